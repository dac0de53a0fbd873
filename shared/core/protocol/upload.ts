// The two ends of a delivery, composed from the pieces above:
//   sealUpload  (connector): record payload → chunked Seal → framed into a spool while hashing;
//                            content key wrapped per verified device under a fresh wrap key
//                            that is destroyed once the manifest (which names its public half)
//                            is signed; the container streamed from the spool.
//   openRecord  (device):    container → manifest verified with the hospital key from the QR
//                            code → own wrapped key unwrapped with the manifest's wrap key →
//                            chunks decrypted as they stream → header, then the file.
// Memory stays about one chunk at each end, whatever the record size.
import {
  createKeyWrapper,
  DEFAULT_CHUNK_SIZE,
  decryptRecordStream,
  encryptRecordPieces,
  generateContentKey,
  unwrapContentKey,
} from '../crypto/index.ts';
import type { ContentKey, KeyPair, PrivateKey, PublicKey, Signer } from '../crypto/index.ts';
import type { ByteSource } from './byte-reader.ts';
import {
  ChunkSectionWriter,
  containerSize,
  MAX_MANIFEST_BYTES,
  readUploadContainer,
  writeUploadContainer,
} from './container.ts';
import type { ContainerLimits, UploadContainer } from './container.ts';
import {
  framedCiphertextLength,
  recipientFor,
  signManifest,
  UPLOAD_MANIFEST_TYPE,
  verifyManifest,
  wrappedKeyBytes,
} from './documents.ts';
import type { ContentClass, UploadManifest } from './documents.ts';
import { toBase64Url } from './encoding.ts';
import { ProtocolError, toProtocolError } from './error-codes.ts';
import { formatTimestamp, newRandomId, publicKeyFrom, uploadObjectName } from './ids.ts';
import { encodeRecordPayload, readRecordPayload, recordPayloadLength } from './record-payload.ts';
import type { RecordHeader } from './record-payload.ts';

/**
 * Where the connector parks the framed chunk section between encrypting and uploading
 * (ciphertext only). A file under the connector's work directory in production.
 */
export interface ChunkSpool {
  write(bytes: Uint8Array): void | Promise<void>;
  /** The bytes written, in order; may be called more than once (an upload retry). */
  read(): AsyncIterable<Uint8Array>;
}

/** A spool in memory, for tests and small records. */
export function memorySpool(): ChunkSpool & { readonly size: number } {
  const pieces: Uint8Array[] = [];
  let size = 0;
  return {
    write(bytes) {
      pieces.push(bytes);
      size += bytes.length;
    },
    async *read() {
      yield* pieces;
    },
    get size() {
      return size;
    },
  };
}

export interface SealUploadOptions {
  readonly hospitalId: string;
  /** Signs the manifest: the hospital's key, in memory or in its token. It wraps nothing. */
  readonly hospital: PrivateKey | Signer;
  readonly patientRef: string;
  /** The member of staff sending, as the hospital's pseudonym (deriveOperatorRef). */
  readonly operatorRef: string;
  /** Devices that passed verifyEnrolment (certificate AND binding proof), at least one. */
  readonly recipients: readonly { readonly deviceId: string; readonly publicKey: PublicKey }[];
  readonly contentClass: ContentClass;
  readonly header: RecordHeader;
  /** The file's bytes: exactly header.size of them. */
  readonly file: ByteSource;
  readonly spool: ChunkSpool;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly chunkSize?: number;
  /** Fresh random ids unless given (a retry of the same upload reuses them). */
  readonly uploadId?: string;
  readonly recordId?: string;
}

export interface SealedUpload {
  readonly manifest: UploadManifest;
  readonly signedManifest: Uint8Array;
  /** hospitals/{hospitalId}/uploads/{uploadId}.cbr */
  readonly objectName: string;
  /** Total container bytes. */
  readonly size: number;
  /** Streams the container (header, manifest, spool); may be called again to retry an upload. */
  bytes(): AsyncGenerator<Uint8Array, void, undefined>;
}

/** Encrypts one record for the given devices and prepares its container. */
export async function sealUpload(options: SealUploadOptions): Promise<SealedUpload> {
  if (options.recipients.length === 0) throw new ProtocolError('UNKNOWN_PATIENT', 'no device to encrypt for');
  for (const recipient of options.recipients) {
    if (recipient.publicKey.fingerprint !== recipient.deviceId) {
      throw new ProtocolError('INVALID_REQUEST', 'a recipient device id is not its key fingerprint');
    }
  }
  const uploadId = options.uploadId ?? newRandomId();
  const recordId = options.recordId ?? newRandomId();
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const plaintextLength = recordPayloadLength(options.header);
  const contentKey = generateContentKey();

  const section = new ChunkSectionWriter();
  const payload = encodeRecordPayload(options.header, options.file);
  for await (const chunk of encryptRecordPieces(payload, { key: contentKey, recordId, chunkSize })) {
    for (const piece of section.frame(chunk)) await options.spool.write(piece);
  }
  const summary = section.finish();
  if (summary.ciphertextLength !== framedCiphertextLength(plaintextLength, chunkSize)) {
    throw new ProtocolError('INTERNAL_ERROR', 'the sealed record has an unexpected length');
  }

  const wrapper = createKeyWrapper();
  let signedManifest: Uint8Array;
  let manifest: UploadManifest;
  try {
    manifest = {
      type: UPLOAD_MANIFEST_TYPE,
      uploadId,
      recordId,
      hospitalId: options.hospitalId,
      patientRef: options.patientRef,
      createdAt: formatTimestamp(options.createdAt),
      expiresAt: formatTimestamp(options.expiresAt),
      contentClass: options.contentClass,
      chunkSize,
      chunkCount: summary.chunkCount,
      plaintextLength,
      ciphertextLength: summary.ciphertextLength,
      ciphertextSha256: summary.ciphertextSha256,
      wrapKey: wrapper.publicKey.toBase64Url(),
      operatorRef: options.operatorRef,
      recipients: options.recipients.map((recipient) => ({
        deviceId: recipient.deviceId,
        wrappedKey: toBase64Url(wrapper.wrap(contentKey, { recordId, device: recipient.publicKey })),
      })),
    };
    signedManifest = signManifest(manifest, options.hospital);
  } finally {
    wrapper.destroy();
  }
  if (signedManifest.length > MAX_MANIFEST_BYTES) throw new ProtocolError('MANIFEST_TOO_LARGE');
  return {
    manifest,
    signedManifest,
    objectName: uploadObjectName(options.hospitalId, uploadId),
    size: containerSize(signedManifest.length, summary.ciphertextLength),
    bytes: () => writeUploadContainer(signedManifest, options.spool.read()),
  };
}

export interface OpenRecordOptions {
  /** This device's key pair for the enrolment that received the record. */
  readonly device: KeyPair;
  /** The hospital's public key, pinned from the QR code at pairing. */
  readonly hospitalPublicKey: PublicKey;
  /** The hospital id from the QR code; the manifest must name it. */
  readonly hospitalId: string;
  /** The record id the device asked for; the manifest must name it. */
  readonly recordId: string;
  readonly limits?: ContainerLimits;
}

export interface OpenedRecord {
  readonly manifest: UploadManifest;
  readonly header: RecordHeader;
  /**
   * The file's bytes as they are decrypted. Write them to a temporary file and keep it only if
   * the iteration ends normally; any error (ProtocolError with CHUNK_INVALID, RECORD_TRUNCATED,
   * DIGEST_MISMATCH, …) means discard. Report the code in the acknowledgement.
   */
  readonly file: AsyncGenerator<Uint8Array, void, undefined>;
}

/** What opening a record checks the manifest against, whichever way the device holds its key. */
export type VerifiedRecordOptions = Pick<
  OpenRecordOptions,
  'hospitalPublicKey' | 'hospitalId' | 'recordId' | 'limits'
>;

/**
 * Opens a downloaded container with the content key `keyOf` finds for its verified manifest:
 * the manifest checked with the hospital key and for this record, then the chunks decrypted as
 * they stream. The one path of openRecord and of a linked phone's openRecordWithLink (§17).
 * All errors are ProtocolErrors.
 */
export async function openVerifiedRecord(
  source: ByteSource,
  options: VerifiedRecordOptions,
  keyOf: (manifest: UploadManifest) => ContentKey,
): Promise<OpenedRecord> {
  let container: UploadContainer | undefined;
  try {
    container = await readUploadContainer(source, options.limits);
    const manifest = verifiedManifestOf(container, options);
    const plaintext = mapErrors(
      decryptRecordStream(container.chunks(), {
        key: keyOf(manifest),
        recordId: manifest.recordId,
        maxChunkSize: manifest.chunkSize,
      }),
    );
    const payload = await readRecordPayload(plaintext, { expectedLength: manifest.plaintextLength });
    return { manifest, header: payload.header, file: mapErrors(payload.file) };
  } catch (error) {
    await container?.close().catch(() => undefined);
    throw toProtocolError(error);
  }
}

/** The container's manifest, verified with the hospital key and checked to be this record's. */
export function verifiedManifestOf(
  container: UploadContainer,
  options: VerifiedRecordOptions,
): UploadManifest {
  const manifest = verifyManifest(container.signedManifest, options.hospitalPublicKey);
  if (manifest.recordId !== options.recordId || manifest.hospitalId !== options.hospitalId) {
    throw new ProtocolError('MANIFEST_INVALID', 'the manifest is for another record');
  }
  return manifest;
}

/** Opens a downloaded container on the device. All errors are ProtocolErrors. */
export async function openRecord(source: ByteSource, options: OpenRecordOptions): Promise<OpenedRecord> {
  return openVerifiedRecord(source, options, (manifest) => {
    const recipient = recipientFor(manifest, options.device.publicKey.fingerprint);
    return unwrapContentKey(wrappedKeyBytes(recipient), {
      recordId: manifest.recordId,
      device: options.device,
      wrapKey: publicKeyFrom(manifest.wrapKey, 'MANIFEST_INVALID'),
    });
  });
}

/** The stream's errors as ProtocolErrors. */
async function* mapErrors(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    yield* source;
  } catch (error) {
    throw toProtocolError(error);
  }
}
