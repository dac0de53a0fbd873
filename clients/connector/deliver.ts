// Delivering files (docs/PROTOCOL.md §10.3): look up the patient's devices, accept only those
// whose certificate verifies with the pinned pairing key, that the enrolment journal holds (an
// invitation this connector issued, used by that device alone, certified before it expired,
// never revoked here) AND whose binding proof verifies under this connector's binding key
// (invariant 3: nobody else can add a recipient), seal the file into a ciphertext spool, and
// upload the container create-only under the hospital's prefix.
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import {
  CONTAINER_MEDIA_TYPE,
  derivePatientRef,
  fromBase64Url,
  isProtocolError,
  patientDevicesResponseSchema,
  ProtocolError,
  sealUpload,
  verifyEnrolment,
  type ContentClass,
  type ErrorCode,
  type VerifiedDevice,
} from '../../shared/core/protocol/index.ts';
import { UsageError } from '../lib/cli.ts';
import { createFileSpool } from '../lib/file-spool.ts';
import type { Connector, JournalEntry } from './home.ts';

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

export interface DeviceCheck {
  readonly accepted: VerifiedDevice[];
  readonly refused: { readonly deviceId: string; readonly code: ErrorCode }[];
}

/** The patient's devices this connector will encrypt for, and those it refuses and why. */
export async function checkedDevices(
  connector: Pick<Connector, 'api' | 'pairingKey' | 'custody' | 'hospitalId' | 'enrolments'>,
  patientRef: string,
  now: Date,
): Promise<DeviceCheck> {
  const listed = await connector.api.call(
    { method: 'GET', target: `/pairing/v1/patients/${patientRef}/devices` },
    patientDevicesResponseSchema,
  );
  const { enrolments, custody } = connector;
  // A device this journal accepted that the cloud no longer lists was revoked or expired: it
  // stays revoked here, so no later answer can bring it back.
  const listedIds = new Set(listed.devices.map((device) => device.deviceId));
  for (const deviceId of enrolments.acceptedDevices(patientRef)) {
    if (!listedIds.has(deviceId)) await enrolments.recordRevocation(deviceId, 'gone', now);
  }
  const passed: VerifiedDevice[] = [];
  const refused: { deviceId: string; code: ErrorCode }[] = [];
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
}

export interface SendResult {
  readonly entry: JournalEntry;
  readonly devices: DeviceCheck;
}

/** Seals one file for the patient's verified devices and uploads it; journals the upload. */
export async function sendFile(
  connector: Connector,
  blobs: BlobStore,
  options: SendOptions,
): Promise<SendResult> {
  if (!Number.isInteger(options.expiresDays) || options.expiresDays < 1 || options.expiresDays > 400) {
    throw new UsageError('--expires-days must be a whole number from 1 to 400');
  }
  let size: number;
  try {
    const info = await stat(options.file);
    if (!info.isFile()) throw new Error('not a file');
    size = info.size;
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
  await mkdir(connector.home.workDir, { recursive: true, mode: 0o700 });
  const spool = await createFileSpool(connector.home.workDir);
  try {
    async function* source(): AsyncGenerator<Uint8Array> {
      let sealed = 0;
      for await (const chunk of createReadStream(options.file, { highWaterMark: 1024 * 1024 })) {
        sealed += (chunk as Buffer).length;
        options.onProgress?.('seal', sealed, size);
        yield chunk as Buffer;
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
      header: {
        filename: basename(options.file),
        mediaType,
        size,
        ...(options.title ? { title: options.title } : {}),
      },
      file: source(),
      spool,
      createdAt: options.now,
      expiresAt: new Date(options.now.getTime() + options.expiresDays * 24 * 3600 * 1000),
    });
    let uploaded = 0;
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const piece of upload.bytes()) {
        uploaded += piece.length;
        options.onProgress?.('upload', uploaded, upload.size);
        yield piece;
      }
    }
    await blobs.createOnly(connector.config.ingestBucket, upload.objectName, counted(), {
      contentType: CONTAINER_MEDIA_TYPE,
    });
    const entry: JournalEntry = {
      uploadId: upload.manifest.uploadId,
      recordId: upload.manifest.recordId,
      patientNumber: options.patientNumber,
      file: options.file,
      contentClass: options.contentClass,
      mediaType,
      ...(options.title ? { title: options.title } : {}),
      sentAt: options.now.toISOString(),
      staffId: connector.operator.staffId,
      status: 'sent',
    };
    await connector.home.record(entry);
    return { entry, devices };
  } finally {
    await spool.dispose();
  }
}
