// Uploads built by hand, for attacks that must get past the container digest: the manifest is
// signed with the hospital's real test key over exactly the chunks the test chooses (reordered,
// swapped, dropped, sealed under another context), and names a wrapped key the test chose. So
// ingest accepts the upload and the device's digest check passes; what refuses it is the check
// under attack (the chunk context binding, the key-wrap payload), nothing before it.
import { createHash } from 'node:crypto';
import {
  CHUNK_OVERHEAD,
  encryptRecord,
  generateContentKey,
  generateKeyPair,
  recordChunkContext,
  type ContentKey,
  type KeyPair,
  type PublicKey,
} from '../../shared/core/crypto/index.ts';
import { contentKeyBytes, privateThemisKey, publicThemisKey } from '../../shared/core/crypto/keys.ts';
import { sealCell } from '../../shared/core/crypto/secure-cell-seal.ts';
import { themis } from '../../shared/core/crypto/themis.ts';
import {
  ChunkSectionWriter,
  encodeRecordPayload,
  formatTimestamp,
  newRandomId,
  signManifest,
  toBase64Url,
  UPLOAD_MANIFEST_TYPE,
  uploadObjectName,
  writeUploadContainer,
  type RecordHeader,
  type UploadManifest,
} from '../../shared/core/protocol/index.ts';
import { collectBytes, type TestDevice, type TestHospital } from './delivery-fixture.ts';

export interface ChunkMaker {
  readonly key: ContentKey;
  readonly recordId: string;
  readonly plaintext: Uint8Array;
  readonly chunkSize: number;
  /** The record's chunks exactly as the connector seals them. */
  genuine(): Uint8Array[];
}

export interface WrapMaker {
  readonly key: ContentKey;
  readonly recordId: string;
  /** The wrap key pair the manifest names (a real upload destroys its private half). */
  readonly wrapKey: KeyPair;
  readonly device: PublicKey;
}

export interface CraftOptions {
  readonly patientRef: string;
  readonly device: Pick<TestDevice, 'deviceId' | 'keys'>;
  readonly header: RecordHeader;
  readonly file: Uint8Array;
  readonly chunkSize: number;
  readonly recordId?: string;
  /** The chunks to frame, in order; default the genuine ones. */
  readonly chunks?: (make: ChunkMaker) => Uint8Array[];
  /** The device's wrapped key; default a genuine wrap under the manifest's wrap key. */
  readonly wrappedKey?: (make: WrapMaker) => Uint8Array;
}

export interface CraftedUpload {
  readonly manifest: UploadManifest;
  readonly objectName: string;
  readonly bytes: Uint8Array;
}

/**
 * A container whose manifest the hospital's real key signs over the chosen chunks: its
 * lengths and ciphertextSha256 are those of the chunk section as framed, so they all check out.
 */
export async function craftUpload(hospital: TestHospital, options: CraftOptions): Promise<CraftedUpload> {
  const recordId = options.recordId ?? newRandomId();
  const uploadId = newRandomId();
  const key = generateContentKey();
  const plaintext = await collectBytes(encodeRecordPayload(options.header, [options.file]));
  const maker: ChunkMaker = {
    key,
    recordId,
    plaintext,
    chunkSize: options.chunkSize,
    genuine: () => encryptRecord(plaintext, { key, recordId, chunkSize: options.chunkSize }),
  };
  const chunks = options.chunks ? options.chunks(maker) : maker.genuine();
  const section = new ChunkSectionWriter();
  const frames = chunks.flatMap((chunk) => section.frame(chunk));
  const summary = section.finish();

  const wrapKey = generateKeyPair();
  const wrap: WrapMaker = { key, recordId, wrapKey, device: options.device.keys.publicKey };
  const wrappedKey = options.wrappedKey ? options.wrappedKey(wrap) : genuineWrap(wrap);
  const createdAt = new Date();
  const manifest: UploadManifest = {
    type: UPLOAD_MANIFEST_TYPE,
    uploadId,
    recordId,
    hospitalId: hospital.hospitalId,
    patientRef: options.patientRef,
    createdAt: formatTimestamp(createdAt),
    expiresAt: formatTimestamp(new Date(createdAt.getTime() + 30 * 86_400_000)),
    contentClass: 'document',
    chunkSize: options.chunkSize,
    chunkCount: summary.chunkCount,
    plaintextLength: chunks.reduce((sum, chunk) => sum + chunk.length - CHUNK_OVERHEAD, 0),
    ciphertextLength: summary.ciphertextLength,
    ciphertextSha256: summary.ciphertextSha256,
    wrapKey: wrapKey.publicKey.toBase64Url(),
    operatorRef: hospital.operatorRef,
    recipients: [{ deviceId: options.device.deviceId, wrappedKey: toBase64Url(wrappedKey) }],
  };
  const signedManifest = signManifest(manifest, hospital.keys.privateKey);
  return {
    manifest,
    objectName: uploadObjectName(hospital.hospitalId, uploadId),
    bytes: await collectBytes(writeUploadContainer(signedManifest, frames)),
  };
}

/** The content key wrapped as a KeyWrapper does, but under a wrap key the test holds. */
function genuineWrap(make: WrapMaker): Uint8Array {
  return wrapPayload(make, keyWrapPayload(make, { version: 2 }));
}

/**
 * The key-wrap payload (shared/core/crypto/key-wrap.ts) built field by field, so a test can
 * change one of them: "CBKW", version, SHA-256 of the wrap and device public keys, record id
 * length and bytes, content key.
 */
export function keyWrapPayload(make: WrapMaker, fields: { readonly version: number }): Uint8Array {
  const id = Buffer.from(make.recordId, 'utf8');
  const digest = (key: PublicKey) => createHash('sha256').update(key.toBytes()).digest();
  return new Uint8Array(
    Buffer.concat([
      Buffer.from('CBKW', 'ascii'),
      Buffer.from([fields.version]),
      digest(make.wrapKey.publicKey),
      digest(make.device),
      Buffer.from([id.length >> 8, id.length & 0xff]),
      id,
      contentKeyBytes(make.key),
    ]),
  );
}

/** Seals a key-wrap payload with Themis Secure Message, from the wrap key to the device. */
export function wrapPayload(make: WrapMaker, payload: Uint8Array): Uint8Array {
  const T = themis();
  return new T.SecureMessage(
    new T.KeyPair(privateThemisKey(make.wrapKey.privateKey), publicThemisKey(make.device)),
  ).encrypt(payload);
}

/**
 * One record chunk sealed by hand: header byte 0x00 and `data`, under the record chunk context
 * of (recordId, index, last), with the context's version byte replaced if `version` is given.
 */
export function sealChunk(
  key: ContentKey,
  data: Uint8Array,
  at: {
    readonly recordId: string;
    readonly index: number;
    readonly last: boolean;
    readonly version?: number;
  },
): Uint8Array {
  const context = recordChunkContext(at.recordId, at.index, at.last);
  if (at.version !== undefined) context[4] = at.version;
  return sealCell(contentKeyBytes(key), [new Uint8Array([0x00]), data], context);
}

/** The record plaintext cut into chunk-sized pieces, as the connector seals it. */
export function plaintextPieces(make: ChunkMaker): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < make.plaintext.length; at += make.chunkSize) {
    pieces.push(make.plaintext.subarray(at, at + make.chunkSize));
  }
  return pieces.length === 0 ? [new Uint8Array()] : pieces;
}
