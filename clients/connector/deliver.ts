// Delivering files (docs/PROTOCOL.md §10.3): look up the patient's devices, accept only those
// whose certificate verifies with the pinned pairing key, that the enrolment journal holds (an
// invitation this connector issued, used by that device alone, certified before it expired,
// never revoked here) AND whose binding proof verifies under this connector's binding key
// (invariant 3: nobody else can add a recipient), seal the file into the connector's home, and
// upload the container create-only under the hospital's prefix through a resumable session
// that survives dropped connections and restarts (pending-uploads.ts, resumable-upload.ts).
// A phone the patient linked (§17) is accepted only when its linked certificate and signed link
// verify (verifyLinkedDevice) AND the device that signed the link is one this connector accepts
// itself: so a linked phone is never more trusted than the journal-accepted phone behind it.
// Sending a file again whose upload did not finish resumes that upload: nothing goes twice.
import { stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import type { createStorage } from '../../shared/adapters/storage-client.ts';
import { isBlobStoreError, type BlobStore } from '../../shared/ports/blob-store.ts';
import { DEFAULT_CHUNK_SIZE } from '../../shared/core/crypto/index.ts';
import {
  CONTAINER_MEDIA_TYPE,
  derivePatientRef,
  deviceLinksResponseSchema,
  fromBase64Url,
  isProtocolError,
  newRandomId,
  patientDevicesResponseSchema,
  ProtocolError,
  publicKeyFrom,
  readDeviceLinkUnverified,
  recordPayloadLength,
  sealUpload,
  verifyEnrolment,
  verifyLinkedDevice,
  type ContentClass,
  type DeviceCertificate,
  type ErrorCode,
  type LinkedDeviceCertificate,
  type VerifiedDevice,
} from '../../shared/core/protocol/index.ts';
import type { PublicKey } from '../../shared/core/crypto/index.ts';
import { UsageError } from '../lib/cli.ts';
import type { Connector, JournalEntry } from './home.ts';
import {
  containerMd5,
  containerSource,
  createChunkFile,
  createPendingDir,
  listPendingUploads,
  lockPending,
  PENDING_UPLOAD_FORMAT,
  removePending,
  writePendingState,
  type PendingUpload,
} from './pending-uploads.ts';
import { receiptFor } from './receipts.ts';
import { recycledReads, releasingSpool, SealedPayloadMeter } from './sealing-buffers.ts';
import {
  isResumableUploadError,
  uploadToSession,
  type RetryPolicy,
  type UploadSource,
  type UploadToSessionOptions,
} from './resumable-upload.ts';

/** Plaintext bytes per sealed chunk (the protocol's default). */
const SEAL_CHUNK_BYTES = DEFAULT_CHUNK_SIZE;

const MEDIA_TYPES: Record<string, string> = {
  '.pdf': 'application/pdf',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.dcm': 'application/dicom',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.txt': 'text/plain',
};

/** The media type for a file name: FHIR JSON when the class says so, else by extension. */
export function guessMediaType(file: string, contentClass: ContentClass): string {
  const extension = extname(file).toLowerCase();
  if (contentClass === 'fhir' && extension === '.json') return 'application/fhir+json';
  return MEDIA_TYPES[extension] ?? 'application/octet-stream';
}

/** A device this connector encrypts for: paired by its own invitation, or linked by one it accepts. */
export interface AcceptedDevice {
  readonly deviceId: string;
  readonly publicKey: PublicKey;
  readonly certificate: DeviceCertificate | LinkedDeviceCertificate;
  /** A linked device: the accepted device whose signed link vouches for it. */
  readonly linkedBy?: string;
}

export interface RefusedDevice {
  readonly deviceId: string;
  readonly code: ErrorCode;
  /** A linked device: the signer its link claims (not verified, as the device was refused). */
  readonly linkedBy?: string;
}

export interface DeviceCheck {
  readonly accepted: AcceptedDevice[];
  readonly refused: RefusedDevice[];
}

type CheckingConnector = Pick<Connector, 'api' | 'pairingKey' | 'custody' | 'hospitalId' | 'enrolments'>;

/** The patient's devices this connector will encrypt for, and those it refuses and why. */
export async function checkedDevices(
  connector: CheckingConnector,
  patientRef: string,
  now: Date,
): Promise<DeviceCheck> {
  const paired = await checkedPairedDevices(connector, patientRef, now);
  const linked = await checkedLinkedDevices(connector, patientRef, now, paired);
  return {
    accepted: [...paired.accepted, ...linked.accepted],
    refused: [...paired.refused, ...linked.refused],
  };
}

/**
 * A device this journal accepted that the cloud no longer lists was revoked or expired: it stays
 * revoked here, so no later answer can bring it back.
 */
async function revokeUnlisted(
  enrolments: Connector['enrolments'],
  accepted: Iterable<string>,
  listed: readonly { readonly deviceId: string }[],
  now: Date,
): Promise<void> {
  const listedIds = new Set(listed.map((device) => device.deviceId));
  for (const deviceId of accepted) {
    if (!listedIds.has(deviceId)) await enrolments.recordRevocation(deviceId, 'gone', now);
  }
}

/** Devices paired by invitation: certificate, journal and binding proof (§10.3). */
async function checkedPairedDevices(
  connector: CheckingConnector,
  patientRef: string,
  now: Date,
): Promise<{ accepted: VerifiedDevice[]; refused: RefusedDevice[] }> {
  const listed = await connector.api.call(
    { method: 'GET', target: `/pairing/v1/patients/${patientRef}/devices` },
    patientDevicesResponseSchema,
  );
  const { enrolments, custody } = connector;
  await revokeUnlisted(enrolments, enrolments.acceptedDevices(patientRef), listed.devices, now);
  const passed: VerifiedDevice[] = [];
  const refused: RefusedDevice[] = [];
  for (const device of listed.devices) {
    try {
      const certificate = fromBase64Url(device.certificate);
      if (!certificate) throw new ProtocolError('CERTIFICATE_INVALID');
      const verified = verifyEnrolment({
        certificate,
        pairingPublicKey: connector.pairingKey,
        bindingKeyFor: (verified) => custody.bindingKeyOf(enrolments.check(verified).bindingKeyVersion),
        hospitalId: connector.hospitalId,
        patientRef,
        now,
      });
      // The list entry must be the device the certificate names.
      if (verified.deviceId !== device.deviceId) throw new ProtocolError('CERTIFICATE_INVALID');
      passed.push(verified);
    } catch (error) {
      if (!isProtocolError(error)) throw error;
      refused.push({ deviceId: device.deviceId, code: error.code });
    }
  }
  const taken = await enrolments.settle(
    passed.map((device) => ({ deviceId: device.deviceId, invitationId: device.certificate.invitationId })),
    now,
  );
  for (const deviceId of taken) refused.push({ deviceId, code: 'INVITATION_USED' });
  return { accepted: passed.filter((device) => !taken.has(device.deviceId)), refused };
}

/**
 * Devices enrolled by a link (§17.4), given the paired devices already checked. Each must pass
 * verifyLinkedDevice with the pinned pairing key, be for this hospital and patient, not be revoked
 * in the journal, and have been linked by a device accepted here, with the very key this
 * connector accepted for it. A phone linked by a linked phone is accepted once its linker is,
 * so acceptance spreads from the paired devices only: a chain that never reaches one (a cycle, a
 * revoked or refused linker, a device the connector never saw) is refused LINK_INVALID ("not
 * signed by a current device of this patient").
 */
async function checkedLinkedDevices(
  connector: CheckingConnector,
  patientRef: string,
  now: Date,
  paired: { readonly accepted: readonly AcceptedDevice[]; readonly refused: readonly RefusedDevice[] },
): Promise<{ accepted: AcceptedDevice[]; refused: RefusedDevice[] }> {
  const listed = await connector.api.call(
    { method: 'GET', target: `/pairing/v1/patients/${patientRef}/device-links` },
    deviceLinksResponseSchema,
  );
  const { enrolments } = connector;
  await revokeUnlisted(enrolments, enrolments.linkedDevices(patientRef), listed.links, now);
  const seen = new Set([...paired.accepted, ...paired.refused].map((device) => device.deviceId));
  const pending: { device: AcceptedDevice & { linkedBy: string }; linkerKey: string }[] = [];
  const refused: RefusedDevice[] = [];
  for (const entry of listed.links) {
    try {
      // One key is one enrolment: listed twice, or both paired and linked, it is neither.
      if (seen.has(entry.deviceId)) throw new ProtocolError('DEVICE_ALREADY_PAIRED');
      seen.add(entry.deviceId);
      const certificate = fromBase64Url(entry.certificate);
      if (!certificate) throw new ProtocolError('CERTIFICATE_INVALID');
      const link = fromBase64Url(entry.link);
      if (!link) throw new ProtocolError('LINK_INVALID');
      const verified = verifyLinkedDevice({ certificate, link }, connector.pairingKey, now);
      if (
        verified.certificate.deviceId !== entry.deviceId ||
        verified.certificate.hospitalId !== connector.hospitalId ||
        verified.certificate.patientRef !== patientRef
      ) {
        throw new ProtocolError('CERTIFICATE_INVALID', 'the certificate is for another device or patient');
      }
      if (enrolments.isRevoked(entry.deviceId)) throw new ProtocolError('DEVICE_REVOKED');
      pending.push({
        device: {
          deviceId: entry.deviceId,
          publicKey: publicKeyFrom(verified.certificate.devicePublicKey, 'KEY_INVALID'),
          certificate: verified.certificate,
          linkedBy: verified.certificate.linkedBy,
        },
        linkerKey: verified.linker.devicePublicKey,
      });
    } catch (error) {
      if (!isProtocolError(error)) throw error;
      refused.push({ deviceId: entry.deviceId, code: error.code, ...claimedLinker(entry.link) });
    }
  }
  const trusted = new Map(paired.accepted.map((device) => [device.deviceId, device.publicKey.toBase64Url()]));
  const accepted: (AcceptedDevice & { linkedBy: string })[] = [];
  // Each pass accepts every pending device whose linker is now trusted; a pass that accepts
  // nothing ends it (at most one pass per device, so a cycle cannot loop).
  for (let grew = true; grew;) {
    grew = false;
    for (const candidate of pending.splice(0)) {
      if (trusted.get(candidate.device.linkedBy) === candidate.linkerKey) {
        trusted.set(candidate.device.deviceId, candidate.device.publicKey.toBase64Url());
        accepted.push(candidate.device);
        grew = true;
      } else {
        pending.push(candidate);
      }
    }
  }
  for (const { device } of pending) {
    refused.push({ deviceId: device.deviceId, code: 'LINK_INVALID', linkedBy: device.linkedBy });
  }
  for (const device of accepted) {
    await enrolments.recordLinked({ deviceId: device.deviceId, patientRef, linkedBy: device.linkedBy }, now);
  }
  return { accepted, refused };
}

/** The signer a refused link names, to show the operator which phone it claims to come from. */
function claimedLinker(linkText: string): { linkedBy?: string } {
  try {
    const link = fromBase64Url(linkText);
    return link ? { linkedBy: readDeviceLinkUnverified(link).linkedBy } : {};
  } catch {
    return {};
  }
}

/** Starts a create-only resumable session for one object and returns its URI. */
export type StartUploadSession = (target: {
  readonly bucket: string;
  readonly name: string;
  readonly size: number;
  readonly contentType: string;
}) => Promise<string>;

/**
 * Sessions started by the official Storage client (its credentials and endpoint; locally the
 * emulator), create-only: ifGenerationMatch=0 is part of the session, so whichever request
 * completes it, the object is made once or not at all.
 */
export function storageSessions(storage: ReturnType<typeof createStorage>): StartUploadSession {
  return async ({ bucket, name, size, contentType }) => {
    const [uri] = await storage
      .bucket(bucket)
      .file(name)
      .createResumableUpload({
        metadata: { contentType, contentLength: size },
        preconditionOpts: { ifGenerationMatch: 0 },
      });
    return uri;
  };
}

/**
 * The Storage client the process environment names: the bins require GCLOUD_PROJECT and load
 * the stack's environment into the process, so every `cb-connector` send resumes. Undefined
 * when the environment names no project (a caller in a process that holds only a BlobStore,
 * such as a test that runs the stack in-process).
 */
async function environmentSessions(): Promise<StartUploadSession | undefined> {
  const project = process.env.GCLOUD_PROJECT ?? process.env.GOOGLE_CLOUD_PROJECT;
  if (!project) return undefined;
  const { createStorage } = await import('../../shared/adapters/storage-client.ts');
  return storageSessions(createStorage(project, process.env));
}

/** How the container goes up; the defaults suit production. */
export interface UploadSettings {
  readonly startSession?: StartUploadSession;
  readonly chunkBytes?: number;
  readonly retry?: Partial<RetryPolicy>;
  readonly onRetry?: UploadToSessionOptions['onRetry'];
}

export interface SendOptions {
  readonly file: string;
  readonly patientNumber: string;
  readonly contentClass: ContentClass;
  readonly mediaType?: string;
  readonly title?: string;
  readonly expiresDays: number;
  readonly now: Date;
  /** Called with bytes of the file sealed and bytes of the container uploaded. */
  readonly onProgress?: (stage: 'seal' | 'upload', done: number, total: number) => void;
  readonly upload?: UploadSettings;
}

export interface SendResult {
  readonly entry: JournalEntry;
  readonly devices: DeviceCheck;
  /** True when this call finished an upload an earlier one had sealed (and perhaps half sent). */
  readonly resumed: boolean;
}

/** The upload's own error, thrown when a pending upload cannot be finished. */
export class UploadError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'UploadError';
    this.code = code;
  }
}

/**
 * Seals one file for the patient's verified devices and uploads it; journals the upload. If an
 * earlier send of this same file (same path, size and modification time, same patient and
 * class) was sealed but did not finish, that upload is resumed instead, provided every device it
 * was sealed for is still verified.
 */
export async function sendFile(
  connector: Connector,
  blobs: BlobStore,
  options: SendOptions,
): Promise<SendResult> {
  if (!Number.isInteger(options.expiresDays) || options.expiresDays < 1 || options.expiresDays > 400) {
    throw new UsageError('--expires-days must be a whole number from 1 to 400');
  }
  const file = resolve(options.file);
  let size: number;
  let mtimeMs: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error('not a file');
    size = info.size;
    mtimeMs = info.mtimeMs;
  } catch {
    throw new UsageError(`cannot read ${options.file}`);
  }
  const patientRef = derivePatientRef(connector.custody.pseudonymKey, options.patientNumber);
  const devices = await checkedDevices(connector, patientRef, options.now);
  if (devices.accepted.length === 0) {
    throw new ProtocolError(
      devices.refused.length === 0 ? 'UNKNOWN_PATIENT' : devices.refused[0]!.code,
      'no verified device',
    );
  }
  const mediaType = options.mediaType ?? guessMediaType(options.file, options.contentClass);
  const accepted = new Set(devices.accepted.map((device) => device.deviceId));

  for (const { dir, state } of await listPendingUploads(connector.home)) {
    const { entry, source } = state;
    const same =
      source.file === file &&
      source.size === size &&
      source.mtimeMs === mtimeMs &&
      entry.patientNumber === options.patientNumber &&
      entry.contentClass === options.contentClass &&
      entry.mediaType === mediaType &&
      entry.title === options.title;
    if (!same) continue;
    const outcome = await resumeOrDrop(connector, blobs, dir, state, accepted, options);
    if (outcome === 'busy') {
      throw new UploadError('UPLOAD_BUSY', 'another connector process is sending this file now');
    }
    if (outcome !== 'dropped') return { entry: outcome, devices, resumed: true };
  }

  const uploadId = newRandomId();
  const dir = await createPendingDir(connector.home, uploadId);
  let sealedState: PendingUpload;
  const chunks = await createChunkFile(dir);
  try {
    const header = {
      filename: basename(options.file),
      mediaType,
      size,
      ...(options.title ? { title: options.title } : {}),
    };
    // The file's byte N is payload byte N + payloadHead (the payload's own header comes first);
    // reads are cut at chunk boundaries, so every chunk is sealed from one piece of the file.
    const payloadHead = recordPayloadLength(header) - size;
    const meter = new SealedPayloadMeter();
    const spool = releasingSpool(chunks, meter);
    async function* plaintext(): AsyncGenerator<Uint8Array> {
      let sealed = 0;
      const pieces = recycledReads(file, {
        firstBytes: SEAL_CHUNK_BYTES - (payloadHead % SEAL_CHUNK_BYTES),
        pieceBytes: SEAL_CHUNK_BYTES,
        sealedThrough: () => meter.sealed - payloadHead,
      });
      for await (const piece of pieces) {
        sealed += piece.length;
        options.onProgress?.('seal', sealed, size);
        yield piece;
      }
    }
    const upload = await sealUpload({
      hospitalId: connector.hospitalId,
      hospital: connector.custody.signer,
      patientRef,
      operatorRef: connector.operator.operatorRef,
      recipients: devices.accepted.map((device) => ({
        deviceId: device.deviceId,
        publicKey: device.publicKey,
      })),
      contentClass: options.contentClass,
      header,
      file: plaintext(),
      spool,
      chunkSize: SEAL_CHUNK_BYTES,
      createdAt: options.now,
      expiresAt: new Date(options.now.getTime() + options.expiresDays * 24 * 3600 * 1000),
      uploadId,
    });
    await spool.flush();
    await chunks.finish();
    // The container's header and manifest: the first piece the container stream yields.
    const stream = upload.bytes();
    const first = await stream.next();
    await stream.return(undefined);
    const prefix = first.done ? new Uint8Array() : first.value;
    if (prefix.length + upload.manifest.ciphertextLength !== upload.size) {
      throw new ProtocolError('INTERNAL_ERROR', 'the container prefix has an unexpected length');
    }
    sealedState = {
      format: PENDING_UPLOAD_FORMAT,
      uploadId,
      bucket: connector.config.ingestBucket,
      objectName: upload.objectName,
      contentType: CONTAINER_MEDIA_TYPE,
      size: upload.size,
      prefix: Buffer.from(prefix).toString('base64'),
      md5: await containerMd5(dir, prefix),
      source: { file, size, mtimeMs },
      recipients: upload.manifest.recipients.map((recipient) => recipient.deviceId),
      entry: {
        uploadId,
        recordId: upload.manifest.recordId,
        patientNumber: options.patientNumber,
        file: options.file,
        contentClass: options.contentClass,
        mediaType,
        ...(options.title ? { title: options.title } : {}),
        sentAt: options.now.toISOString(),
        staffId: connector.operator.staffId,
        status: 'sent',
      },
    };
    await writePendingState(dir, sealedState);
  } catch (error) {
    await chunks.close();
    await removePending(dir);
    throw error;
  }
  const entry = await finishPending(connector, blobs, dir, sealedState, options);
  if (!entry) throw new UploadError('UPLOAD_BUSY', 'another process took the upload this one sealed');
  return { entry, devices, resumed: false };
}

/**
 * Sends a sealed upload to the end (starting its session if it has none yet), journals it and
 * forgets it. Undefined if another live process holds it. On failure the upload stays pending,
 * so the next send of the same file, or resumePendingUploads, carries on from the session.
 */
async function finishPending(
  connector: Connector,
  blobs: BlobStore,
  dir: string,
  pending: PendingUpload,
  options: Pick<SendOptions, 'onProgress' | 'upload'>,
): Promise<JournalEntry | undefined> {
  const release = await lockPending(dir);
  if (!release) return undefined;
  let state = pending;
  try {
    const source = await containerSource(dir, state);
    let starter: Promise<StartUploadSession | undefined> | undefined;
    const sessions = () =>
      (starter ??= options.upload?.startSession
        ? Promise.resolve(options.upload.startSession)
        : environmentSessions());
    if (!state.sessionUri && !(await sessions())) {
      // No way to start a session: one create-only request through the BlobStore, which a
      // dropped connection restarts from zero (the upload stays pending until it succeeds).
      await sendWhole(blobs, state, source, options);
      return await settle(connector, dir, state);
    }
    for (let session = 0; ; session++) {
      if (!state.sessionUri) {
        const start = await sessions();
        if (!start) {
          throw new UploadError(
            'UPLOAD_SESSION_GONE',
            'the upload session is gone and no new one can be started here',
          );
        }
        const sessionUri = await start({
          bucket: state.bucket,
          name: state.objectName,
          size: state.size,
          contentType: state.contentType,
        });
        state = { ...state, sessionUri };
        await writePendingState(dir, state);
      }
      try {
        await uploadToSession({
          sessionUri: state.sessionUri!,
          source,
          ...(options.upload?.chunkBytes !== undefined ? { chunkBytes: options.upload.chunkBytes } : {}),
          ...(options.upload?.retry ? { retry: options.upload.retry } : {}),
          ...(options.upload?.onRetry ? { onRetry: options.upload.onRetry } : {}),
          onCommitted: (done, total) => options.onProgress?.('upload', done, total),
        });
        break;
      } catch (error) {
        if (!isResumableUploadError(error)) throw error;
        const lost = error.code === 'UPLOAD_SESSION_GONE' || error.code === 'UPLOAD_ALREADY_EXISTS';
        if (!lost) throw new UploadError(error.code, error.message, { cause: error });
        // The session cannot say what became of it: the object or ingest's receipt can.
        if (await delivered(connector, blobs, state)) break;
        if (error.code === 'UPLOAD_ALREADY_EXISTS' || session > 0) {
          throw new UploadError(error.code, error.message, { cause: error });
        }
        state = { ...state, sessionUri: undefined };
        await writePendingState(dir, state);
      }
    }
  } finally {
    await release();
  }
  return settle(connector, dir, state);
}

async function sendWhole(
  blobs: BlobStore,
  state: PendingUpload,
  source: UploadSource,
  options: Pick<SendOptions, 'onProgress'>,
): Promise<void> {
  let sent = 0;
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const piece of source.range(0, source.size)) {
      sent += piece.length;
      options.onProgress?.('upload', sent, source.size);
      yield piece;
    }
  }
  try {
    await blobs.createOnly(state.bucket, state.objectName, counted(), { contentType: state.contentType });
  } catch (error) {
    if (!isBlobStoreError(error, 'ALREADY_EXISTS')) throw error;
    // Our own earlier attempt, whose answer was lost: the name holds a random upload id.
    const info = await blobs.stat(state.bucket, state.objectName);
    if (info?.size !== state.size) throw error;
  }
}

/** Whether the object was made (still in the bucket, or already judged by ingest). */
async function delivered(connector: Connector, blobs: BlobStore, state: PendingUpload): Promise<boolean> {
  const info = await blobs.stat(state.bucket, state.objectName);
  if (info) return info.size === state.size;
  const receipt = await receiptFor(connector, blobs, state.uploadId);
  return receipt.state === 'accepted' || receipt.state === 'rejected';
}

/** Journals a finished upload, then forgets it (a crash between the two journals it twice, harmlessly). */
async function settle(connector: Connector, dir: string, state: PendingUpload): Promise<JournalEntry> {
  await connector.home.record(state.entry);
  await removePending(dir);
  return state.entry;
}

/**
 * Resumes a pending upload if every device it was sealed for is still in `accepted`. Otherwise
 * the container is never sent: it is dropped ('dropped'), unless it already became an object.
 */
async function resumeOrDrop(
  connector: Connector,
  blobs: BlobStore,
  dir: string,
  state: PendingUpload,
  accepted: ReadonlySet<string>,
  options: Pick<SendOptions, 'onProgress' | 'upload'>,
): Promise<JournalEntry | 'busy' | 'dropped'> {
  if (state.recipients.every((deviceId) => accepted.has(deviceId))) {
    return (await finishPending(connector, blobs, dir, state, options)) ?? 'busy';
  }
  const release = await lockPending(dir);
  if (!release) return 'busy';
  try {
    if (state.sessionUri && (await delivered(connector, blobs, state)))
      return await settle(connector, dir, state);
    await removePending(dir);
    return 'dropped';
  } finally {
    await release();
  }
}

export interface ResumedUploads {
  /** Finished and journalled. */
  readonly finished: JournalEntry[];
  /** Sealed for a device that is no longer verified, so never sent: send these files again. */
  readonly dropped: JournalEntry[];
  /** Still pending: the upload failed again (the code says why) or another process has it. */
  readonly waiting: { readonly entry: JournalEntry; readonly code: string }[];
}

/**
 * Finishes every upload this home has sealed but not finished (a connector that crashed or was
 * stopped mid-upload), whatever file it came from, after checking the patient's devices again.
 * Uploads another live process is sending are left to it. The drop folder calls this when it
 * starts (drop-recovery.ts).
 */
export async function resumePendingUploads(
  connector: Connector,
  blobs: BlobStore,
  options: Pick<SendOptions, 'onProgress' | 'upload'> & { readonly now?: Date } = {},
): Promise<ResumedUploads> {
  const finished: JournalEntry[] = [];
  const dropped: JournalEntry[] = [];
  const waiting: { entry: JournalEntry; code: string }[] = [];
  for (const { dir, state } of await listPendingUploads(connector.home)) {
    let outcome: JournalEntry | 'busy' | 'dropped';
    try {
      const patientRef = derivePatientRef(connector.custody.pseudonymKey, state.entry.patientNumber);
      const devices = await checkedDevices(connector, patientRef, options.now ?? new Date());
      const accepted = new Set(devices.accepted.map((device) => device.deviceId));
      outcome = await resumeOrDrop(connector, blobs, dir, state, accepted, options);
    } catch (error) {
      // One upload that cannot finish now must not keep the others waiting; it stays pending.
      const code = (error as { code?: unknown } | null)?.code;
      if (!(error instanceof UploadError || isBlobStoreError(error) || isProtocolError(error))) throw error;
      waiting.push({ entry: state.entry, code: typeof code === 'string' ? code : 'UNKNOWN' });
      continue;
    }
    if (outcome === 'dropped') dropped.push(state.entry);
    else if (outcome === 'busy') waiting.push({ entry: state.entry, code: 'UPLOAD_BUSY' });
    else finished.push(outcome);
  }
  return { finished, dropped, waiting };
}
