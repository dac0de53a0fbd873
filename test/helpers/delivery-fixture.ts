// Test-side actors for delivery tests on the whole local stack: a registered hospital, devices
// paired through the real pairing function, sealed uploads dropped into the ingest bucket, and
// receipts read back from the outbox. Everything goes through the official clients and the
// functions' HTTP APIs; nothing is mocked.
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import type { KeyCustody } from '../../clients/connector/custody/custody.ts';
import { EnrolmentJournal } from '../../clients/connector/enrolments.ts';
import { createApiClient, type ApiClient } from '../../clients/lib/api-client.ts';
import { createBlobStore } from '../../shared/adapters/blob-store.ts';
import { createFirestoreHospitalRegistry } from '../../shared/adapters/firestore-pairing.ts';
import { createFunctionKeyDirectory } from '../../shared/adapters/function-keys.ts';
import { createStorage } from '../../shared/adapters/google-clients.ts';
import {
  generateKeyPair,
  keyPairSigner,
  type KeyPair,
  type PrivateKey,
  type PublicKey,
} from '../../shared/core/crypto/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import {
  bindingProofText,
  deriveBindingSecret,
  deriveOperatorRef,
  derivePatientRef,
  deviceKeyId,
  formatTimestamp,
  hospitalKeyId,
  memorySpool,
  newInvitationToken,
  newRandomId,
  PAIR_REQUEST_TYPE,
  pairResponseSchema,
  invitationResponseSchema,
  memoryHmacKey,
  receiptObjectName,
  sealUpload,
  signPairRequest,
  toBase64Url,
  tokenDigest,
  verifyReceipt,
  type ContentClass,
  type HmacKey,
  type Receipt,
  type RecordHeader,
  type SealedUpload,
} from '../../shared/core/protocol/index.ts';
import type { Stack } from '../../emulator/stack.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;

/** What the fixture needs of a stack: its environment (in-process or spawned). */
export type StackEnv = Pick<Stack, 'env'>;

export interface TestHospital {
  readonly hospitalId: string;
  readonly keys: KeyPair;
  /** The connector's two HMAC keys (pseudonyms, binding), and their bytes for log scans. */
  readonly pseudonymKey: HmacKey;
  readonly bindingKey: HmacKey;
  readonly secretBytes: readonly Uint8Array[];
  /** As a connector holds them: its key custody and its enrolment journal (a temp file). */
  readonly custody: KeyCustody;
  readonly enrolments: EnrolmentJournal;
  /** The member of staff the test acts as, as the hospital's pseudonym. */
  readonly operatorRef: string;
  /** Hospital-signed client for /pairing/v1. */
  readonly api: ApiClient;
}

export interface TestDevice {
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly keys: KeyPair;
  readonly deviceId: string;
  readonly fcmToken: string;
  /** base64url signed certificate. */
  readonly certificate: string;
  /** Device-signed client for /records/v1. */
  readonly api: ApiClient;
}

export async function registerTestHospital(
  firestore: Firestore,
  stack: StackEnv,
  hospitalId: string,
): Promise<TestHospital> {
  const keys = generateKeyPair();
  await createFirestoreHospitalRegistry(firestore).registerHospital({
    hospitalId,
    status: 'active',
    publicKeys: [keys.publicKey],
    expiresAt: new Date(Date.now() + YEAR_MS),
  });
  const secretBytes = [new Uint8Array(randomBytes(32)), new Uint8Array(randomBytes(32))];
  const pseudonymKey = memoryHmacKey(secretBytes[0]!, 1);
  const bindingKey = memoryHmacKey(secretBytes[1]!, 1);
  const journalDir = await mkdtemp(join(tmpdir(), 'cb-enrolments-'));
  return {
    hospitalId,
    keys,
    pseudonymKey,
    bindingKey,
    secretBytes,
    custody: {
      kind: 'file',
      signer: keyPairSigner(keys),
      pseudonymKey,
      bindingKey,
      bindingKeyOf: () => bindingKey,
      close: () => undefined,
    },
    enrolments: await EnrolmentJournal.open(join(journalDir, 'enrolments.jsonl')),
    operatorRef: deriveOperatorRef(pseudonymKey, `staff-of-${hospitalId}`),
    api: createApiClient({
      apiBase: stack.env.FUNCTIONS_BASE_URL!,
      signer: { keyId: hospitalKeyId(hospitalId, keys.publicKey), privateKey: keys.privateKey },
    }),
  };
}

/** A function's published public key (pairing signs certificates, ingest signs receipts). */
export async function functionPublicKey(firestore: Firestore, functionName: string): Promise<PublicKey> {
  const published = await createFunctionKeyDirectory({ firestore }).publishedPublicKeys();
  const key = published.find((entry) => entry.functionName === functionName);
  if (!key) throw new Error(`no published key for ${functionName}`);
  return key.publicKey;
}

export interface TestInvitation {
  readonly hospital: TestHospital;
  readonly invitationId: string;
  readonly patientRef: string;
  readonly token: string;
  readonly bindingSecret: Uint8Array;
}

/** Creates an invitation through the pairing function, as the connector does (§10.1). */
export async function inviteTestPatient(
  hospital: TestHospital,
  patientNumber: string,
  options: { expiresInMs?: number } = {},
): Promise<TestInvitation> {
  const invitationId = newRandomId();
  const patientRef = derivePatientRef(hospital.pseudonymKey, patientNumber);
  const token = newInvitationToken();
  const expiresAt = new Date(Date.now() + (options.expiresInMs ?? 15 * 60 * 1000));
  await hospital.api.call(
    {
      method: 'POST',
      target: '/pairing/v1/invitations',
      json: {
        invitationId,
        patientRef,
        tokenSha256: tokenDigest(token),
        expiresAt: formatTimestamp(expiresAt),
        maxAttempts: 3,
        operatorRef: hospital.operatorRef,
      },
    },
    invitationResponseSchema,
  );
  const bindingSecret = deriveBindingSecret(hospital.bindingKey, invitationId, patientRef);
  // As the connector journals every invitation it issues (only those can enrol a device).
  await hospital.enrolments.recordInvitation({
    invitationId,
    patientRef,
    createdAt: new Date().toISOString(),
    expiresAt: new Date(formatTimestamp(expiresAt)).toISOString(),
    bindingKeyVersion: hospital.bindingKey.version,
    operatorRef: hospital.operatorRef,
    staffId: `staff-of-${hospital.hospitalId}`,
  });
  return { hospital, invitationId, patientRef, token, bindingSecret };
}

/** The body of POST /pairing/v1/pair for a device key, as a phone sends it after scanning (§10.2). */
export function pairBodyFor(
  invitation: TestInvitation,
  keys: KeyPair,
  fcmToken: string,
  /** For attacks: a request signed at another time, or by a key other than the one it enrols. */
  options: { issuedAt?: Date; signedWith?: PrivateKey } = {},
): { token: string; pairRequest: string } {
  const { invitationId, token, bindingSecret } = invitation;
  const pairRequest = signPairRequest(
    {
      type: PAIR_REQUEST_TYPE,
      invitationId,
      tokenSha256: tokenDigest(token),
      devicePublicKey: keys.publicKey.toBase64Url(),
      deviceId: keys.publicKey.fingerprint,
      bindingProof: bindingProofText(bindingSecret, invitationId, keys.publicKey),
      fcmToken,
      platform: 'android',
      issuedAt: formatTimestamp(options.issuedAt ?? new Date()),
    },
    options.signedWith ?? keys.privateKey,
  );
  return { token, pairRequest: toBase64Url(pairRequest) };
}

/** Pairs a fresh device key with an invitation, as a phone would after scanning (§10.2). */
export async function pairWithInvitation(
  stack: StackEnv,
  invitation: TestInvitation,
  options: { fcmToken?: string } = {},
): Promise<TestDevice> {
  const keys = generateKeyPair();
  const fcmToken = options.fcmToken ?? `fcm-${newRandomId()}`;
  const paired = await createApiClient({ apiBase: stack.env.FUNCTIONS_BASE_URL! }).call(
    { method: 'POST', target: '/pairing/v1/pair', json: pairBodyFor(invitation, keys, fcmToken) },
    pairResponseSchema,
  );
  return {
    hospitalId: invitation.hospital.hospitalId,
    patientRef: invitation.patientRef,
    keys,
    deviceId: paired.deviceId,
    fcmToken,
    certificate: paired.certificate,
    api: createApiClient({
      apiBase: stack.env.FUNCTIONS_BASE_URL!,
      signer: { keyId: deviceKeyId(paired.deviceId), privateKey: keys.privateKey },
    }),
  };
}

/** Invites and pairs a fresh device for a patient. */
export async function pairTestDevice(
  stack: StackEnv,
  hospital: TestHospital,
  patientNumber: string,
  options: { fcmToken?: string } = {},
): Promise<TestDevice> {
  return pairWithInvitation(stack, await inviteTestPatient(hospital, patientNumber), options);
}

export interface TestUploadOptions {
  readonly patientRef: string;
  /** The devices to wrap the key for (any device: a paired TestDevice or a phone's enrolment). */
  readonly recipients: readonly Pick<TestDevice, 'deviceId' | 'keys'>[];
  readonly file: Uint8Array;
  readonly header?: Partial<RecordHeader>;
  readonly contentClass?: ContentClass;
  readonly chunkSize?: number;
  readonly createdAt?: Date;
  readonly expiresAt?: Date;
  readonly recordId?: string;
  readonly uploadId?: string;
}

/** Seals a record in memory exactly as the connector does (small files only). */
export async function sealTestUpload(
  hospital: TestHospital,
  options: TestUploadOptions,
): Promise<SealedUpload> {
  const createdAt = options.createdAt ?? new Date();
  return sealUpload({
    hospitalId: hospital.hospitalId,
    hospital: hospital.keys.privateKey,
    patientRef: options.patientRef,
    operatorRef: hospital.operatorRef,
    recipients: options.recipients.map((device) => ({
      deviceId: device.deviceId,
      publicKey: device.keys.publicKey,
    })),
    contentClass: options.contentClass ?? 'document',
    header: {
      filename: 'letter.pdf',
      mediaType: 'application/pdf',
      size: options.file.length,
      ...options.header,
    },
    file: [options.file],
    spool: memorySpool(),
    createdAt,
    expiresAt: options.expiresAt ?? new Date(createdAt.getTime() + 30 * 24 * 3600 * 1000),
    ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
    ...(options.recordId === undefined ? {} : { recordId: options.recordId }),
    ...(options.uploadId === undefined ? {} : { uploadId: options.uploadId }),
  });
}

/** All of an async byte stream, for small objects. */
export async function collectBytes(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}

export function stackBlobStore(stack: StackEnv): BlobStore {
  return createBlobStore(createStorage(stack.env.GCLOUD_PROJECT!, stack.env));
}

/** Drops raw bytes into the ingest bucket (which fires the ingest function). */
export async function dropUpload(stack: StackEnv, objectName: string, bytes: Uint8Array): Promise<void> {
  await stackBlobStore(stack).createOnly(
    stack.env.INGEST_BUCKET!,
    objectName,
    (async function* () {
      yield bytes;
    })(),
  );
}

/** Waits for ingest's signed receipt in the hospital's outbox and verifies it. */
export async function waitForReceipt(
  stack: StackEnv,
  hospitalId: string,
  uploadId: string,
  ingestPublicKey: PublicKey,
  timeoutMs = 30_000,
): Promise<Receipt> {
  const blobs = stackBlobStore(stack);
  const name = receiptObjectName(hospitalId, uploadId);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = await blobs.stat(stack.env.OUTBOX_BUCKET!, name);
    if (info)
      return verifyReceipt(await collectBytes(blobs.read(stack.env.OUTBOX_BUCKET!, name)), ingestPublicKey);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no receipt for upload ${uploadId} within ${timeoutMs} ms`);
}

/** Seals, uploads and waits for the receipt. */
export async function deliver(
  stack: StackEnv,
  hospital: TestHospital,
  ingestPublicKey: PublicKey,
  options: TestUploadOptions,
): Promise<{ sealed: SealedUpload; receipt: Receipt }> {
  const sealed = await sealTestUpload(hospital, options);
  await dropUpload(stack, sealed.objectName, await collectBytes(sealed.bytes()));
  return {
    sealed,
    receipt: await waitForReceipt(stack, hospital.hospitalId, sealed.manifest.uploadId, ingestPublicKey),
  };
}

/** How many pushes the local FCM recorder holds for a token. */
export async function pushCount(stack: StackEnv, token: string): Promise<number> {
  const response = await fetch(
    `${stack.env.FCM_EMULATOR_URL}/_recorder/messages?token=${encodeURIComponent(token)}`,
  );
  return ((await response.json()) as { messages: unknown[] }).messages.length;
}

/**
 * Waits until an object is gone (ingest deletes an upload last, after its receipt); true if it
 * went within the time.
 */
export async function waitUntilGone(
  stack: StackEnv,
  bucket: string,
  name: string,
  timeoutMs = 15_000,
): Promise<boolean> {
  const blobs = stackBlobStore(stack);
  const deadline = Date.now() + timeoutMs;
  while ((await blobs.stat(bucket, name)) !== undefined) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}
