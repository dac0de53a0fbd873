// The audit transparency log on a local stack, for tests: its stored events, the sequencer
// built in the test process (as the sequencer function builds it, speaking to KMS as the
// sequencer's own identity) or run through the local scheduler, and a witness that cosigns
// with a key of the test's own.
import type { Firestore } from '@google-cloud/firestore';
import { systemClock } from '../../shared/adapters/clock.ts';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import {
  AUDIT_COLLECTIONS,
  createFirestoreAuditLog,
  createFirestoreLogRegistry,
} from '../../shared/adapters/firestore-audit.ts';
import { createKms } from '../../shared/adapters/google-clients.ts';
import { kmsNoteSigner, type KmsNoteSigner } from '../../shared/adapters/kms-note-signer.ts';
import { openAuditEvent, type AuditFields } from '../../shared/audit/fields.ts';
import {
  auditLogKeyName,
  cosignatureSigner,
  cosignCheckpoint,
  witnessKeyName,
  type CosignatureSigner,
} from '../../shared/core/tlog/index.ts';
import { toBase64Url } from '../../shared/core/protocol/encoding.ts';
import { serviceAccountPrincipal } from '../../shared/emulation.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import type { Clock } from '../../shared/ports/clock.ts';
import { bucketName, cryptoKeyName, loadCatalog } from '../../shared/runtime/catalog.ts';
import { createLogObjects } from '../../shared/adapters/log-objects.ts';
import type { LogObjects } from '../../shared/ports/log-objects.ts';
import { createSequencer, type Sequencer } from '../../shared/services/sequencer.ts';
import { createTransparency, type Transparency } from '../../shared/services/transparency.ts';
import { stackBlobStore, type StackEnv } from './delivery-fixture.ts';

/** Every stored audit event (pending or sequenced), optionally only those matching `where`. */
export async function storedAuditEvents(
  firestore: Firestore,
  where: Partial<
    Pick<AuditFields, 'hospitalId' | 'patientRef' | 'recordId' | 'action' | 'invitationId'>
  > = {},
): Promise<AuditFields[]> {
  const { docs } = await firestore.collection(AUDIT_COLLECTIONS.entries).get();
  return docs
    .map((doc) => openAuditEvent(doc.get('event') as string))
    .filter((fields) =>
      Object.entries(where).every(([key, value]) => fields[key as keyof AuditFields] === value),
    )
    .sort((a, b) => a.at.localeCompare(b.at));
}

export function tlogBucket(stack: StackEnv): string {
  return bucketName(loadCatalog(), 'tlog', stack.env.GCLOUD_PROJECT!);
}

export function stackLogObjects(stack: StackEnv, blobs: BlobStore = stackBlobStore(stack)): LogObjects {
  return createLogObjects(blobs, tlogBucket(stack));
}

/** The platform's log key as the sequencer uses it (KMS, as the sequencer's own identity). */
export function stackLogSigner(stack: StackEnv): Promise<KmsNoteSigner> {
  const catalog = loadCatalog();
  const projectId = stack.env.GCLOUD_PROJECT!;
  const principal = serviceAccountPrincipal(catalog.functions.sequencer!.serviceAccount, projectId);
  return kmsNoteSigner(
    createKms(stack.env, principal),
    `${cryptoKeyName(catalog, 'sequencer', projectId)}/cryptoKeyVersions/1`,
    auditLogKeyName(stack.env.FUNCTIONS_BASE_URL!),
  );
}

export interface StackSequencerOptions {
  readonly objects?: LogObjects;
  readonly signer?: () => Promise<KmsNoteSigner>;
}

/** A sequencer in the test process over the stack's real adapters (wrap `objects` to inject faults). */
export function stackSequencer(
  stack: StackEnv,
  firestore: Firestore,
  options: StackSequencerOptions = {},
): Sequencer {
  let signer: Promise<KmsNoteSigner> | undefined;
  return createSequencer({
    entries: createFirestoreAuditLog(firestore),
    objects: options.objects ?? stackLogObjects(stack),
    registry: createFirestoreLogRegistry(firestore),
    signer: options.signer ?? (() => (signer ??= stackLogSigner(stack))),
    apiBase: stack.env.FUNCTIONS_BASE_URL!,
    logger: cloudLogger({ functionName: 'sequencer', sink: () => undefined }),
  });
}

/** Runs the deployed sequencer through the local scheduler, as its schedule would. */
export async function runSequencer(stack: StackEnv & { functions: { url: string } }): Promise<void> {
  const response = await fetch(`${stack.functions.url}/_scheduler/jobs/sequencer:run`, { method: 'POST' });
  const run = (await response.json()) as { status: number };
  if (run.status !== 200) throw new Error(`the sequencer answered ${run.status}`);
}

export function stackTransparency(
  stack: StackEnv,
  firestore: Firestore,
  clock: Clock = systemClock,
): Transparency {
  return createTransparency({
    objects: stackLogObjects(stack),
    registry: createFirestoreLogRegistry(firestore),
    apiBase: stack.env.FUNCTIONS_BASE_URL!,
    clock,
  });
}

/** A hospital witness with a key of the test's own, cosigning through the transparency service. */
export function testWitness(hospitalId: string, seed: Uint8Array, nowSeconds: () => number) {
  const signer: CosignatureSigner = cosignatureSigner(witnessKeyName(hospitalId), seed, nowSeconds);
  return {
    signer,
    witnessKey: toBase64Url(signer.publicKey),
    /** Cosigns the log's newest checkpoint as it stands (no consistency check: a helper, not a witness). */
    async cosignLatest(transparency: Transparency): Promise<{ size: number; recorded: boolean }> {
      const { checkpoint } = await transparency.latestCheckpoint(hospitalId, undefined);
      if (!checkpoint) throw new Error('the log has no checkpoint yet');
      return transparency.cosign(
        hospitalId,
        await cosignCheckpoint(checkpoint, [signer]),
        toBase64Url(signer.publicKey),
      );
    },
  };
}
