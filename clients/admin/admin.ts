// The operator's side of onboarding (docs/OPERATIONS.md): register a hospital's public key,
// list and suspend hospitals, and hand the hospital the configuration its connector pins —
// the API base, its buckets, and the pairing and ingest functions' public keys.
import type { Firestore } from '@google-cloud/firestore';
import { createFirestoreHospitalRegistry } from '../../shared/adapters/firestore-pairing.ts';
import {
  createFunctionKeyDirectory,
  provisionFunctionKey,
  provisionFunctionKeys,
  type KmsCrypto,
  type ProvisionedFunctionKey,
} from '../../shared/adapters/function-keys.ts';
import { importPublicKey, isCryptoError, type PublicKey } from '../../shared/core/crypto/index.ts';
import {
  FunctionKeyError,
  type FunctionKeyErrorCode,
  type PublishedFunctionKey,
} from '../../shared/ports/function-keys.ts';
import type { HospitalRecord } from '../../shared/ports/pairing-store.ts';
import {
  canonicalApiBase,
  deletionReceiptFromText,
  hospitalIdSchema,
} from '../../shared/core/protocol/index.ts';
import { bucketName, loadCatalog, type Catalog } from '../../shared/runtime/catalog.ts';
import { z, ZodError } from 'zod';
import {
  createFirestoreAuditLog,
  createFirestoreLogRegistry,
} from '../../shared/adapters/firestore-audit.ts';
import { MIN_AUDIT_RETENTION_DAYS } from '../../shared/audit/fields.ts';
import { auditLogOrigin, TlogError, type CosignatureVerifier } from '../../shared/core/tlog/index.ts';
import type { LogObjects } from '../../shared/ports/log-objects.ts';
import {
  AuditProblemFound,
  parseLogKey,
  parseWitnessKey,
  UnreadableEntries,
  verifyLog,
  type LogSource,
  type LogVerdict,
} from './audit-verify.ts';
import { createFirestoreRetentionPolicyStore } from '../../shared/adapters/firestore-retention.ts';
import {
  RETENTION_BOUNDS,
  RETENTION_SETTINGS,
  type RetentionPolicy,
  type RetentionSetting,
} from '../../shared/retention/policy.ts';
import { EXIT, UsageError } from '../lib/cli.ts';
import type { Onboarding } from '../connector/home.ts';

export interface RegisterOptions {
  readonly hospitalId: string;
  /** base64url of the hospital's 45-byte public key (`cb-connector keys` prints it). */
  readonly publicKey: string;
  readonly expiresDays: number;
  readonly apiBase: string;
  readonly projectId: string;
  readonly now: Date;
}

function parsePublicKey(text: string): PublicKey {
  try {
    return importPublicKey(text.trim());
  } catch (error) {
    if (isCryptoError(error))
      throw new UsageError('--public-key is not a Themis EC P-256 public key (base64url)');
    throw error;
  }
}

/** Every function's public key as published in the database. */
export async function publishedFunctionKeys(firestore: Firestore): Promise<readonly PublishedFunctionKey[]> {
  return [...(await createFunctionKeyDirectory({ firestore }).publishedPublicKeys())].sort((a, b) =>
    a.functionName.localeCompare(b.functionName),
  );
}

/** A function's public key as published in the database (pin it outside the project where it matters). */
export async function publishedFunctionKey(firestore: Firestore, name: string): Promise<PublicKey> {
  const published = await createFunctionKeyDirectory({ firestore }).publishedPublicKeys();
  const key = published.find((entry) => entry.functionName === name);
  if (!key)
    throw new UsageError(`the ${name} function has no published key yet (provision function keys first)`);
  return key.publicKey;
}

/** The functions that own a Themis key pair: those the catalog gives an ENCRYPT_DECRYPT key. */
export function keyedFunctions(catalog: Catalog): string[] {
  return Object.keys(catalog.functions)
    .filter((name) => catalog.functions[name]!.kms.some((grant) => grant.purpose === 'ENCRYPT_DECRYPT'))
    .sort();
}

export interface ProvisionKeysOptions {
  readonly projectId: string;
  /** One function; default: every keyed function. */
  readonly functionName?: string;
  readonly catalog?: Catalog;
}

/**
 * Creates the key pair of each function that has none (or of one), wrapped by the function's own
 * KMS key. Create-only: a function that already has a key keeps it, byte for byte, because
 * devices and connectors have pinned its public key. `kms` speaks as the caller, who needs
 * Encrypt on the keys (a key custodian in a project, the owner locally) and Firestore write.
 */
export async function provisionKeys(
  firestore: Firestore,
  kms: KmsCrypto,
  options: ProvisionKeysOptions,
): Promise<ProvisionedFunctionKey[]> {
  const catalog = options.catalog ?? loadCatalog();
  const keyed = keyedFunctions(catalog);
  const common = { firestore, kms, catalog, projectId: options.projectId };
  if (options.functionName === undefined) return provisionFunctionKeys(common);
  if (!keyed.includes(options.functionName)) {
    throw new UsageError(
      `--function must be one of ${keyed.join(', ')} (the functions with a key of their own)`,
    );
  }
  return [await provisionFunctionKey({ ...common, functionName: options.functionName })];
}

/**
 * What a key-provisioning failure tells the operator, and its exit code: refused (3) when the
 * service said no or found something wrong that retrying will not fix, failure (1) when it could
 * not be reached or the answer was damaged in transit. Undefined for any other error.
 */
export function functionKeyFailure(error: unknown): { message: string; exitCode: number } | undefined {
  if (!(error instanceof FunctionKeyError)) return undefined;
  const transient: readonly FunctionKeyErrorCode[] = ['KEY_SERVICE_UNAVAILABLE', 'KEY_INTEGRITY'];
  const hint: Partial<Record<FunctionKeyErrorCode, string>> = {
    KEY_ACCESS_DENIED:
      ' (provisioning needs Encrypt on the function keys and Firestore write: see docs/OPERATIONS.md)',
    KEY_SERVICE_UNAVAILABLE: '; running the command again is safe',
    KEY_INTEGRITY: '; running the command again is safe',
  };
  return {
    message: `${error.code}: ${error.message}${hint[error.code] ?? ''}`,
    exitCode: transient.includes(error.code) ? EXIT.FAILURE : EXIT.REFUSED,
  };
}

/** Registers (or re-registers) a hospital and returns its connector's onboarding configuration. */
export async function registerHospital(firestore: Firestore, options: RegisterOptions): Promise<Onboarding> {
  const id = hospitalIdSchema.safeParse(options.hospitalId);
  if (!id.success) throw new UsageError('--id must be 3–40 of a-z, 0-9 and -, starting alphanumeric');
  const apiBase = canonicalApiBase(options.apiBase);
  if (apiBase === undefined)
    throw new UsageError('--api-base must be https://host[:port][/path] (http only for 127.0.0.1)');
  if (!Number.isInteger(options.expiresDays) || options.expiresDays < 1 || options.expiresDays > 3660) {
    throw new UsageError('--expires-days must be a whole number from 1 to 3660');
  }
  const publicKey = parsePublicKey(options.publicKey);
  await createFirestoreHospitalRegistry(firestore).registerHospital({
    hospitalId: id.data,
    status: 'active',
    publicKeys: [publicKey],
    expiresAt: new Date(options.now.getTime() + options.expiresDays * 24 * 3600 * 1000),
  });
  const catalog = loadCatalog();
  return {
    hospitalId: id.data,
    apiBase,
    ingestBucket: bucketName(catalog, 'ingest', options.projectId),
    outboxBucket: bucketName(catalog, 'outbox', options.projectId),
    pairingPublicKey: (await publishedFunctionKey(firestore, 'pairing')).toBase64Url(),
    ingestPublicKey: (await publishedFunctionKey(firestore, 'ingest')).toBase64Url(),
  };
}

export async function listHospitals(firestore: Firestore): Promise<HospitalRecord[]> {
  return createFirestoreHospitalRegistry(firestore).listHospitals();
}

/** Suspends a hospital: its signed requests and uploads are refused from now on. */
export async function suspendHospital(firestore: Firestore, hospitalId: string): Promise<void> {
  const registry = createFirestoreHospitalRegistry(firestore);
  const hospital = await registry.getHospital(hospitalId);
  if (!hospital) throw new UsageError(`no hospital ${hospitalId} is registered`);
  await registry.registerHospital({
    hospitalId,
    status: 'suspended',
    publicKeys: Object.values(hospital.publicKeys).map((key) => importPublicKey(key)),
    expiresAt: hospital.expiresAt,
  });
}

/** Parses `name=value` retention changes; unknown names and non-numbers are usage errors. */
export function parsePolicyChanges(assignments: readonly string[]): Partial<RetentionPolicy> {
  const changes: Partial<Record<RetentionSetting, number>> = {};
  for (const assignment of assignments) {
    const match = /^([A-Za-z]+)=([0-9]{1,6})$/.exec(assignment);
    const name = match?.[1] as RetentionSetting | undefined;
    if (!match || name === undefined || !RETENTION_SETTINGS.includes(name)) {
      throw new UsageError(`--set takes NAME=NUMBER with NAME one of ${RETENTION_SETTINGS.join(', ')}`);
    }
    changes[name] = Number(match[2]);
  }
  return changes;
}

/** Changes a registered hospital's retention policy (audited), or shows it when `changes` is empty. */
export async function retentionPolicy(
  firestore: Firestore,
  options: { hospitalId: string; changes: Partial<RetentionPolicy>; operator?: string; now: Date },
): Promise<{ before: RetentionPolicy; after: RetentionPolicy }> {
  if (!(await createFirestoreHospitalRegistry(firestore).getHospital(options.hospitalId))) {
    throw new UsageError(`no hospital ${options.hospitalId} is registered`);
  }
  const store = createFirestoreRetentionPolicyStore(firestore, createFirestoreAuditLog(firestore));
  if (Object.keys(options.changes).length === 0) {
    const policy = await store.get(options.hospitalId);
    return { before: policy, after: policy };
  }
  if (!options.operator) throw new UsageError('a change needs --operator NAME (the audit trail records who)');
  try {
    return await store.change({
      hospitalId: options.hospitalId,
      changes: options.changes,
      operator: options.operator,
      at: options.now,
    });
  } catch (error) {
    if (error instanceof ZodError) {
      const issue = error.issues[0];
      const name = String(issue?.path[0] ?? '');
      const bounds = RETENTION_BOUNDS[name as RetentionSetting];
      throw new UsageError(
        bounds
          ? `${name} must be ${bounds[1]}..${bounds[2]}${issue?.code === 'custom' ? ` (${issue.message})` : ''}`
          : 'invalid policy',
      );
    }
    throw error;
  }
}

export interface AuditLogVerdict {
  readonly logId: string;
  /** The log key the checkpoints were checked with (undefined: none known). */
  readonly logKey?: string;
  readonly verdict: LogVerdict;
}

export interface AuditVerifyReport {
  /** 'pinned': the operator passed --log-key; 'registry': each log's key as the database holds it. */
  readonly keySource: 'pinned' | 'registry';
  readonly logs: readonly AuditLogVerdict[];
}

/** Errors of a stored entry that is malformed (a store that cannot be reached has a gRPC code). */
function isUnreadableEntry(error: unknown): boolean {
  return error instanceof Error && typeof (error as { code?: unknown }).code !== 'number';
}

function logSource(
  objects: LogObjects,
  entries: ReturnType<typeof createFirestoreAuditLog>,
  logId: string,
): LogSource {
  return {
    async checkpoint() {
      try {
        return (await objects.checkpoint(logId))?.note;
      } catch (error) {
        if (!(error instanceof TlogError)) throw error;
        throw new AuditProblemFound({
          code: 'CHECKPOINT_SIGNATURE_INVALID',
          message: `the checkpoint object is not a signed checkpoint: ${error.message}`,
        });
      }
    },
    tile: (coord) => objects.tile(logId, coord),
    entryBundle: (index, width) => objects.entryBundle(logId, index, width),
    async entries(from, limit) {
      try {
        return await entries.sequenced(logId, { from, limit });
      } catch (error) {
        if (isUnreadableEntry(error)) throw new UnreadableEntries((error as Error).message);
        throw error;
      }
    },
    staged: async (size) => (await objects.staged(logId, size))?.ids,
  };
}

/**
 * Verifies every audit transparency log (or one) in full: checkpoint, every tile and bundle,
 * every entry document, the witness's cosigned checkpoints (clients/admin/audit-verify.ts).
 * `logKey` should be pinned by the operator: the key the registry holds is only as trustworthy
 * as the database, which is exactly what the log must not rely on.
 */
export async function verifyAuditLogs(
  firestore: Firestore,
  objects: LogObjects,
  options: { logId?: string; logKey?: string; apiBase: string; now: Date },
): Promise<AuditVerifyReport> {
  const apiBase = canonicalApiBase(options.apiBase);
  if (apiBase === undefined) throw new UsageError('--api-base must be https://host[:port][/path]');
  if (options.logKey !== undefined) {
    try {
      parseLogKey(options.logKey);
    } catch {
      throw new UsageError("--log-key must be the log's note verifier key, <name>+<id>+<base64>");
    }
  }
  const registry = createFirestoreLogRegistry(firestore);
  const entries = createFirestoreAuditLog(firestore);
  const logIds = options.logId !== undefined ? [options.logId] : await registry.logs();
  const cutoff = new Date(options.now.getTime() - MIN_AUDIT_RETENTION_DAYS * 24 * 3600 * 1000);
  const logs: AuditLogVerdict[] = [];
  for (const logId of logIds) {
    const state = await registry.state(logId);
    const keyText = options.logKey ?? state.verifierKey;
    const record = (verdict: LogVerdict) =>
      logs.push({ logId, ...(keyText ? { logKey: keyText } : {}), verdict });
    let witness: CosignatureVerifier | undefined;
    try {
      witness = state.witnessKey === undefined ? undefined : parseWitnessKey(state.witnessKey, logId);
    } catch {
      record({
        ok: false,
        code: 'WITNESS_SIGNATURE_INVALID',
        message: "the registry's witness key is malformed",
      });
      continue;
    }
    let logKey;
    try {
      logKey = keyText === undefined ? undefined : parseLogKey(keyText);
    } catch {
      record({ ok: false, code: 'LOG_KEY_UNKNOWN', message: "the registry's log key is malformed" });
      continue;
    }
    const anchor = witness ? await registry.witnessedBefore(logId, cutoff) : undefined;
    const verdict = await verifyLog(logSource(objects, entries, logId), {
      logId,
      origin: auditLogOrigin(apiBase, logId),
      logKey,
      expectCheckpoint: state.verifierKey !== undefined,
      ...(witness ? { witness } : {}),
      ...(state.witnessed ? { witnessed: state.witnessed.note } : {}),
      ...(anchor ? { pruneAnchor: anchor.note } : {}),
      now: options.now,
    });
    record(verdict);
  }
  return { keySource: options.logKey !== undefined ? 'pinned' : 'registry', logs };
}

/**
 * Runs retention now through the deployed function (locally: the functions host). On Google
 * Cloud the call needs an identity token of someone infra/ lets invoke the function.
 */
export async function runRetention(
  functionsBaseUrl: string,
  options: { jobId?: string; idToken?: string },
): Promise<{ jobId: string; complete: boolean; alreadyDone: boolean; receipt: Uint8Array }> {
  const response = await fetch(`${functionsBaseUrl.replace(/\/+$/, '')}/retention`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.idToken ? { authorization: `Bearer ${options.idToken}` } : {}),
    },
    body: JSON.stringify(options.jobId ? { jobId: options.jobId } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`the retention function answered ${response.status}`);
  const body = retentionRunResponseSchema.parse(JSON.parse(text));
  return { ...body, receipt: deletionReceiptFromText(body.receipt) };
}

const retentionRunResponseSchema = z.strictObject({
  jobId: z.string(),
  complete: z.boolean(),
  alreadyDone: z.boolean(),
  receipt: z.string(),
});
