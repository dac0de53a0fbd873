import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KeyPair } from '../../shared/core/crypto/index.ts';
import { CHUNK_OVERHEAD, generateKeyPair, sign } from '../../shared/core/crypto/index.ts';
import type {
  ByteSource,
  RecordHeader,
  SealedUpload,
  UploadManifest,
} from '../../shared/core/protocol/index.ts';
import {
  canonicalJson,
  CONTAINER_HEADER_LENGTH,
  containerSize,
  encodeRecordPayload,
  MAX_MANIFEST_BYTES,
  memorySpool,
  newRandomId,
  openRecord,
  readRecordPayload,
  readUploadContainer,
  recordPayloadLength,
  sealUpload,
  toBase64Url,
  uploadObjectName,
  verifyManifest,
  writeUploadContainer,
} from '../../shared/core/protocol/index.ts';
import { protocolCodeOfAsync as codeOf } from '../helpers/protocol-errors.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK_SIZE = 64 * KiB;
const CANARY = 'CANARY-7f3a9c-diagnosis-of-Jan-Jansen';
const FILENAME = 'FILENAME-CANARY-ontslagbrief-jansen.pdf';

let hospital: KeyPair;
let otherHospital: KeyPair;
let deviceA: KeyPair;
let deviceB: KeyPair;
let stranger: KeyPair;
let file: Uint8Array;
let header: RecordHeader;
let sealed: SealedUpload;
let container: Uint8Array;
const patientRef = 'xdnLtlQnC0V61gqvvTVwYg';
const hospitalId = 'st-example-zh';

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}

/** Yields `bytes` in irregular pieces, as a network stream would. */
async function* pieces(bytes: Uint8Array, sizes: readonly number[] = [1, 7, 4096, 65_537, 3, 200_000]) {
  let offset = 0;
  let i = 0;
  while (offset < bytes.length) {
    const size = sizes[i++ % sizes.length]!;
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

/** Reads a whole container through chunks(), returning the chunk count. */
async function readAll(bytes: Uint8Array, limits = {}): Promise<number> {
  const reader = await readUploadContainer(pieces(bytes), limits);
  let count = 0;
  for await (const chunk of reader.chunks()) {
    expect(chunk.length).toBeGreaterThanOrEqual(CHUNK_OVERHEAD);
    count += 1;
  }
  return count;
}

function manifestLength(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(5, false);
}

/** A container around an arbitrary (validly signed) manifest object and a chunk section. */
function assemble(manifestObject: unknown, section: Uint8Array, key: KeyPair = hospital): Uint8Array {
  const signed = sign(new TextEncoder().encode(canonicalJson(manifestObject)), key.privateKey);
  const head = new Uint8Array(CONTAINER_HEADER_LENGTH);
  head.set([0x43, 0x42, 0x52, 0x55, 1]);
  new DataView(head.buffer).setUint32(5, signed.length, false);
  return new Uint8Array(Buffer.concat([head, signed, section]));
}

function sectionOf(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(CONTAINER_HEADER_LENGTH + manifestLength(bytes));
}

async function seal(
  fileBytes: Uint8Array,
  recordHeader: RecordHeader,
  recipients: KeyPair[],
  chunkSize = CHUNK_SIZE,
): Promise<{ sealed: SealedUpload; bytes: Uint8Array }> {
  const result = await sealUpload({
    hospitalId,
    hospital: hospital.privateKey,
    patientRef,
    operatorRef: patientRef,
    recipients: recipients.map((pair) => ({
      deviceId: pair.publicKey.fingerprint,
      publicKey: pair.publicKey,
    })),
    contentClass: 'document',
    header: recordHeader,
    file: pieces(fileBytes, [10_000, 123_457]),
    spool: memorySpool(),
    createdAt: new Date('2026-01-01T10:00:00Z'),
    expiresAt: new Date('2026-04-01T10:00:00Z'),
    chunkSize,
  });
  return { sealed: result, bytes: await collect(result.bytes()) };
}

beforeAll(async () => {
  hospital = generateKeyPair();
  otherHospital = generateKeyPair();
  deviceA = generateKeyPair();
  deviceB = generateKeyPair();
  stranger = generateKeyPair();
  // 3 MiB + a bit: 49 chunks of 64 KiB, the canary repeated throughout.
  file = new Uint8Array(3 * MiB + 12_345);
  file.set(randomBytes(file.length));
  const canary = new TextEncoder().encode(CANARY);
  for (let offset = 0; offset + canary.length <= file.length; offset += 200_003) file.set(canary, offset);
  header = {
    filename: FILENAME,
    mediaType: 'application/pdf',
    size: file.length,
    title: `Ontslagbrief ${CANARY}`,
    fhirDocumentReferenceId: 'doc-123',
  };
  ({ sealed, bytes: container } = await seal(file, header, [deviceA, deviceB]));
});

describe('container writer and reader', () => {
  it('writes the documented layout and a consistent manifest', () => {
    const m = sealed.manifest;
    expect(Buffer.from(container.subarray(0, 5))).toEqual(Buffer.from([0x43, 0x42, 0x52, 0x55, 0x01]));
    expect(manifestLength(container)).toBe(sealed.signedManifest.length);
    expect(container.length).toBe(sealed.size);
    expect(container.length).toBe(containerSize(sealed.signedManifest.length, m.ciphertextLength));
    expect(m.plaintextLength).toBe(recordPayloadLength(header));
    expect(m.chunkCount).toBe(Math.ceil(m.plaintextLength / CHUNK_SIZE));
    expect(m.ciphertextLength).toBe(m.plaintextLength + m.chunkCount * (4 + CHUNK_OVERHEAD));
    expect(m.recipients.map((r) => r.deviceId)).toEqual([
      deviceA.publicKey.fingerprint,
      deviceB.publicKey.fingerprint,
    ]);
    expect(sealed.objectName).toBe(uploadObjectName(hospitalId, m.uploadId));
    expect(m.type).toBe('cb/upload-manifest/v2');
    expect(m.wrapKey).not.toBe(hospital.publicKey.toBase64Url()); // a fresh wrap key, not the hospital's
  });

  it('frames the record back without any key, in any piece sizes, and verifies separately', async () => {
    expect(await readAll(container)).toBe(sealed.manifest.chunkCount);
    const reader = await readUploadContainer(pieces(container, [1]), { expectedSize: container.length });
    expect(reader.manifest).toEqual(sealed.manifest);
    expect(verifyManifest(reader.signedManifest, hospital.publicKey)).toEqual(sealed.manifest);
    expect(await codeOf(async () => verifyManifest(reader.signedManifest, otherHospital.publicKey))).toBe(
      'MANIFEST_SIGNATURE_INVALID',
    );
    await reader.close();
  });

  it('bytes() passes the exact container through (ingest copies it onward)', async () => {
    const reader = await readUploadContainer(pieces(container));
    expect(Buffer.from(await collect(reader.bytes())).equals(container)).toBe(true);
    // A reader is read once.
    expect(await codeOf(() => collect(reader.chunks()))).toBe('INVALID_REQUEST');
  });

  it('each device opens its record and streams the file back', async () => {
    for (const device of [deviceA, deviceB]) {
      const opened = await openRecord(pieces(container), {
        device,
        hospitalPublicKey: hospital.publicKey,
        hospitalId,
        recordId: sealed.manifest.recordId,
      });
      expect(opened.header).toEqual(header);
      expect(Buffer.from(await collect(opened.file)).equals(Buffer.from(file))).toBe(true);
    }
  });

  it('a retry streams the same container again from the spool', async () => {
    expect(Buffer.from(await collect(sealed.bytes())).equals(container)).toBe(true);
  });

  it('never lets the plaintext, filename or title reach the container or the manifest', () => {
    const bytes = Buffer.from(container);
    for (const secret of [CANARY, FILENAME, 'Ontslagbrief', 'application/pdf', 'doc-123']) {
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
      expect(JSON.stringify(sealed.manifest).includes(secret)).toBe(false);
    }
    // Nor any 64-byte window of the file.
    for (let offset = 0; offset < file.length; offset += 1_000_003) {
      expect(bytes.includes(Buffer.from(file.subarray(offset, offset + 64)))).toBe(false);
    }
  });

  it('handles an empty file (one chunk holding only the payload header)', async () => {
    const empty = { filename: 'empty.txt', mediaType: 'text/plain', size: 0 };
    const { sealed: s, bytes } = await seal(new Uint8Array(0), empty, [deviceA], 16);
    expect(s.manifest.chunkCount).toBe(Math.ceil(recordPayloadLength(empty) / 16));
    const opened = await openRecord(pieces(bytes), {
      device: deviceA,
      hospitalPublicKey: hospital.publicKey,
      hospitalId,
      recordId: s.manifest.recordId,
    });
    expect(opened.header).toEqual(empty);
    expect((await collect(opened.file)).length).toBe(0);
  });
});

describe('container malformations are rejected with stable codes', () => {
  it('wrong magic: UPLOAD_MALFORMED, even when short', async () => {
    for (let i = 0; i < 4; i++) {
      const bad = container.slice();
      bad[i]! ^= 0x20;
      expect(await codeOf(() => readAll(bad))).toBe('UPLOAD_MALFORMED');
    }
    expect(await codeOf(() => readAll(Uint8Array.of(0x50, 0x4b)))).toBe('UPLOAD_MALFORMED');
  });

  it('wrong version: UPLOAD_VERSION_UNSUPPORTED', async () => {
    for (const version of [0, 2, 0xff]) {
      const bad = container.slice();
      bad[4] = version;
      expect(await codeOf(() => readAll(bad))).toBe('UPLOAD_VERSION_UNSUPPORTED');
    }
  });

  it('a flipped bit in the manifest length: too large, truncated or malformed, never accepted', async () => {
    for (let position = 5; position < 9; position++) {
      for (const bit of [0x01, 0x80]) {
        const bad = container.slice();
        bad[position]! ^= bit;
        expect(['MANIFEST_TOO_LARGE', 'MANIFEST_INVALID', 'UPLOAD_MALFORMED', 'UPLOAD_TRUNCATED']).toContain(
          await codeOf(() => readAll(bad)),
        );
      }
    }
  });

  it('oversized or empty manifest length: MANIFEST_TOO_LARGE, UPLOAD_MALFORMED', async () => {
    const big = container.slice();
    new DataView(big.buffer).setUint32(5, MAX_MANIFEST_BYTES + 1, false);
    expect(await codeOf(() => readAll(big))).toBe('MANIFEST_TOO_LARGE');
    new DataView(big.buffer).setUint32(5, 0xffff_ffff, false);
    expect(await codeOf(() => readAll(big))).toBe('MANIFEST_TOO_LARGE');
    const zero = container.slice();
    new DataView(zero.buffer).setUint32(5, 0, false);
    expect(await codeOf(() => readAll(zero))).toBe('UPLOAD_MALFORMED');
  });

  it('any flipped byte in the manifest is caught by the reader or by verifyManifest', async () => {
    const start = CONTAINER_HEADER_LENGTH;
    const end = start + manifestLength(container);
    const head = container.subarray(0, end + 1024); // the reader never needs more to check a manifest
    const codes = new Set<string>();
    for (let position = start; position < end; position++) {
      const bad = head.slice();
      bad[position]! ^= 0x04;
      const code = await codeOf(async () => {
        const reader = await readUploadContainer([bad]);
        verifyManifest(reader.signedManifest, hospital.publicKey);
        await reader.close();
      });
      codes.add(code);
    }
    expect([...codes].sort()).toEqual(
      expect.arrayContaining(['MANIFEST_INVALID', 'MANIFEST_SIGNATURE_INVALID'].sort()),
    );
    for (const code of codes) {
      expect(['MANIFEST_INVALID', 'MANIFEST_SIGNATURE_INVALID', 'MANIFEST_TOO_LARGE']).toContain(code);
    }
  });

  it('a flipped byte in a chunk frame length: UPLOAD_MALFORMED; in chunk data: DIGEST_MISMATCH', async () => {
    const sectionStart = CONTAINER_HEADER_LENGTH + manifestLength(container);
    const frame = 4 + CHUNK_SIZE + CHUNK_OVERHEAD;
    for (const chunk of [0, 1, sealed.manifest.chunkCount - 1]) {
      const frameStart = sectionStart + chunk * frame;
      const lengthByte = container.slice();
      lengthByte[frameStart + 2]! ^= 0x01;
      expect(await codeOf(() => readAll(lengthByte))).toBe('UPLOAD_MALFORMED');
      for (const offset of [4, 40, 1000]) {
        const dataByte = container.slice();
        dataByte[frameStart + offset]! ^= 0x01;
        expect(await codeOf(() => readAll(dataByte))).toBe('DIGEST_MISMATCH');
      }
    }
    const last = container.slice();
    last[last.length - 1]! ^= 0x80;
    expect(await codeOf(() => readAll(last))).toBe('DIGEST_MISMATCH');
  });

  it('the last chunk is not handed out before the digest and the end are checked', async () => {
    const bad = container.slice();
    bad[bad.length - 1]! ^= 0x01;
    const reader = await readUploadContainer([bad]);
    let seen = 0;
    const code = await codeOf(async () => {
      for await (const chunk of reader.chunks()) {
        expect(chunk).toBeInstanceOf(Uint8Array);
        seen += 1;
      }
    });
    expect(code).toBe('DIGEST_MISMATCH');
    expect(seen).toBe(sealed.manifest.chunkCount - 1);
  });

  it('truncation anywhere: UPLOAD_TRUNCATED', async () => {
    const m = CONTAINER_HEADER_LENGTH + manifestLength(container);
    const offsets = [
      0,
      3,
      5,
      8,
      9,
      10,
      m - 1,
      m,
      m + 2,
      m + 4,
      m + 5000,
      m + 4 + CHUNK_SIZE + CHUNK_OVERHEAD,
    ];
    offsets.push(container.length - CHUNK_OVERHEAD, container.length - 1);
    for (const length of offsets) {
      const code = await codeOf(() => readAll(container.subarray(0, length)));
      expect({ length, code }).toEqual({ length, code: 'UPLOAD_TRUNCATED' });
    }
  });

  it('trailing bytes, or an extra frame: UPLOAD_TRAILING_DATA', async () => {
    expect(await codeOf(() => readAll(Buffer.concat([container, Buffer.from([0])])))).toBe(
      'UPLOAD_TRAILING_DATA',
    );
    const lastFrame = container.subarray(container.length - 200);
    expect(await codeOf(() => readAll(Buffer.concat([container, lastFrame])))).toBe('UPLOAD_TRAILING_DATA');
  });

  it('the object size from Storage is checked before any chunk is read', async () => {
    expect(await codeOf(() => readAll(container, { expectedSize: container.length - 1 }))).toBe(
      'UPLOAD_TRUNCATED',
    );
    expect(await codeOf(() => readAll(container, { expectedSize: container.length + 1 }))).toBe(
      'UPLOAD_TRAILING_DATA',
    );
    expect(await codeOf(() => readAll(container, { expectedSize: 20 }))).toBe('UPLOAD_TRUNCATED');
  });

  it('limits: UPLOAD_TOO_LARGE for the chunk section and the chunk size', async () => {
    expect(await codeOf(() => readAll(container, { maxCiphertextLength: 1 * MiB }))).toBe('UPLOAD_TOO_LARGE');
    expect(await codeOf(() => readAll(container, { maxChunkSize: 32 * KiB }))).toBe('UPLOAD_TOO_LARGE');
  });

  it('a signed manifest whose chunk count does not follow from its lengths: MANIFEST_INVALID', async () => {
    const section = sectionOf(container);
    for (const change of [
      { chunkCount: sealed.manifest.chunkCount + 1 },
      { chunkCount: sealed.manifest.chunkCount - 1 },
      { ciphertextLength: sealed.manifest.ciphertextLength + 1 },
      { plaintextLength: sealed.manifest.plaintextLength - 1 },
      { chunkSize: CHUNK_SIZE * 2 },
    ]) {
      const bad = assemble({ ...sealed.manifest, ...change }, section);
      expect(await codeOf(() => readAll(bad))).toBe('MANIFEST_INVALID');
    }
  });

  it('a validly signed manifest with another digest: DIGEST_MISMATCH', async () => {
    const other = toBase64Url(new Uint8Array(randomBytes(32)));
    const bad = assemble({ ...sealed.manifest, ciphertextSha256: other }, sectionOf(container));
    expect(await codeOf(() => readAll(bad))).toBe('DIGEST_MISMATCH');
  });

  it('chunks dropped from the end or swapped: UPLOAD_TRUNCATED or DIGEST_MISMATCH', async () => {
    const section = sectionOf(container);
    const frame = 4 + CHUNK_SIZE + CHUNK_OVERHEAD;
    const dropped = assemble(sealed.manifest, section.subarray(0, section.length - frame));
    // The last frame's expected length differs from a full frame, so the reader sees it early.
    expect(['UPLOAD_TRUNCATED', 'UPLOAD_MALFORMED']).toContain(await codeOf(() => readAll(dropped)));
    const swapped = Buffer.concat([
      section.subarray(frame, 2 * frame),
      section.subarray(0, frame),
      section.subarray(2 * frame),
    ]);
    expect(await codeOf(() => readAll(assemble(sealed.manifest, swapped)))).toBe('DIGEST_MISMATCH');
  });

  it('a document of another type in the manifest slot: MANIFEST_INVALID', async () => {
    const bad = assemble({ type: 'cb/receipt/v1', uploadId: sealed.manifest.uploadId }, sectionOf(container));
    expect(await codeOf(() => readAll(bad))).toBe('MANIFEST_INVALID');
  });

  it('a source that yields non-bytes: INVALID_REQUEST', async () => {
    expect(await codeOf(() => readUploadContainer(['CBRU' as unknown as Uint8Array]))).toBe(
      'INVALID_REQUEST',
    );
  });
});

describe('the device end refuses what is not for it', () => {
  const open = (bytes: Uint8Array, overrides: Partial<Parameters<typeof openRecord>[1]> = {}) =>
    openRecord(pieces(bytes), {
      device: deviceA,
      hospitalPublicKey: hospital.publicKey,
      hospitalId,
      recordId: sealed.manifest.recordId,
      ...overrides,
    });

  it('another device: NOT_A_RECIPIENT; another hospital key: MANIFEST_SIGNATURE_INVALID', async () => {
    expect(await codeOf(() => open(container, { device: stranger }))).toBe('NOT_A_RECIPIENT');
    expect(await codeOf(() => open(container, { hospitalPublicKey: otherHospital.publicKey }))).toBe(
      'MANIFEST_SIGNATURE_INVALID',
    );
    expect(await codeOf(() => open(container, { recordId: newRandomId() }))).toBe('MANIFEST_INVALID');
    expect(await codeOf(() => open(container, { hospitalId: 'other-hospital' }))).toBe('MANIFEST_INVALID');
  });

  it("another device's wrapped key under its own id: KEY_BINDING_MISMATCH or KEY_UNWRAP_FAILED", async () => {
    const m: UploadManifest = sealed.manifest;
    const swapped = {
      ...m,
      recipients: [
        { deviceId: deviceA.publicKey.fingerprint, wrappedKey: m.recipients[1]!.wrappedKey },
        { deviceId: deviceB.publicKey.fingerprint, wrappedKey: m.recipients[0]!.wrappedKey },
      ],
    };
    expect(['KEY_UNWRAP_FAILED', 'KEY_BINDING_MISMATCH']).toContain(
      await codeOf(() => open(assemble(swapped, sectionOf(container)))),
    );
  });

  it('chunks reordered under a re-signed manifest: CHUNK_INVALID while streaming', async () => {
    const { sealed: small, bytes } = await seal(file.subarray(0, 300 * KiB), { ...header, size: 300 * KiB }, [
      deviceA,
    ]);
    const section = sectionOf(bytes);
    const frame = 4 + CHUNK_SIZE + CHUNK_OVERHEAD;
    const swapped = new Uint8Array(
      Buffer.concat([
        section.subarray(frame, 2 * frame),
        section.subarray(0, frame),
        section.subarray(2 * frame),
      ]),
    );
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', swapped));
    const resigned = assemble({ ...small.manifest, ciphertextSha256: toBase64Url(digest) }, swapped);
    const code = await codeOf(async () => {
      const opened = await open(resigned, { recordId: small.manifest.recordId });
      await collect(opened.file);
    });
    expect(code).toBe('CHUNK_INVALID');
  });
});

describe('writer safety', () => {
  it('refuses a spool that does not match the manifest', async () => {
    const section = sectionOf(container);
    const short = section.subarray(0, section.length - 1);
    expect(await codeOf(() => collect(writeUploadContainer(sealed.signedManifest, [short])))).toBe(
      'INVALID_REQUEST',
    );
    const long = Buffer.concat([section, Buffer.from([0])]);
    expect(await codeOf(() => collect(writeUploadContainer(sealed.signedManifest, [long])))).toBe(
      'INVALID_REQUEST',
    );
    const flipped = section.slice();
    flipped[100]! ^= 1;
    expect(await codeOf(() => collect(writeUploadContainer(sealed.signedManifest, [flipped])))).toBe(
      'INVALID_REQUEST',
    );
  });

  it('refuses to seal for a recipient whose id is not its key fingerprint, or for nobody', async () => {
    const base = {
      hospitalId,
      hospital: hospital.privateKey,
      patientRef,
      operatorRef: patientRef,
      contentClass: 'other' as const,
      header: { filename: 'a.txt', mediaType: 'text/plain', size: 1 },
      file: [Uint8Array.of(1)],
      spool: memorySpool(),
      createdAt: new Date('2026-01-01T00:00:00Z'),
      expiresAt: new Date('2026-02-01T00:00:00Z'),
    };
    expect(
      await codeOf(() =>
        sealUpload({
          ...base,
          recipients: [{ deviceId: deviceB.publicKey.fingerprint, publicKey: deviceA.publicKey }],
        }),
      ),
    ).toBe('INVALID_REQUEST');
    expect(await codeOf(() => sealUpload({ ...base, recipients: [] }))).toBe('UNKNOWN_PATIENT');
  });
});

describe('record payload (inside the encryption)', () => {
  const small: RecordHeader = { filename: 'lab.json', mediaType: 'application/fhir+json', size: 5 };

  async function payloadOf(h: RecordHeader, body: ByteSource): Promise<Uint8Array> {
    return collect(encodeRecordPayload(h, body));
  }

  it('round-trips header and file; the header comes first', async () => {
    const bytes = await payloadOf(small, [Uint8Array.of(1, 2), Uint8Array.of(3, 4, 5)]);
    expect(Buffer.from(bytes.subarray(0, 5))).toEqual(Buffer.from([0x43, 0x42, 0x52, 0x50, 0x01]));
    expect(bytes.length).toBe(recordPayloadLength(small));
    const read = await readRecordPayload(pieces(bytes, [1]));
    expect(read.header).toEqual(small);
    expect([...(await collect(read.file))]).toEqual([1, 2, 3, 4, 5]);
  });

  it('ignores unknown header fields (forward compatible), validates known ones', async () => {
    const bytes = await payloadOf(small, [Uint8Array.of(1, 2, 3, 4, 5)]);
    const json = JSON.stringify({ ...small, future: 'x' });
    const patched = Buffer.concat([
      Buffer.from([0x43, 0x42, 0x52, 0x50, 1, 0, 0, 0, json.length]),
      Buffer.from(json),
      bytes.subarray(bytes.length - 5),
    ]);
    expect((await readRecordPayload([patched])).header).toEqual(small);
    for (const bad of [
      { ...small, filename: '../etc/passwd' },
      { ...small, filename: 'a\u0000b' },
      { ...small, mediaType: 'pdf' },
      { ...small, size: -1 },
      { ...small, size: 1.5 },
    ]) {
      expect(await codeOf(() => payloadOf(bad, []))).toBe('INVALID_REQUEST');
    }
  });

  it('the encoder refuses a file longer or shorter than header.size', async () => {
    expect(await codeOf(() => payloadOf(small, [new Uint8Array(6)]))).toBe('INVALID_REQUEST');
    expect(await codeOf(() => payloadOf(small, [new Uint8Array(4)]))).toBe('INVALID_REQUEST');
  });

  it('the reader refuses malformed payloads: RECORD_PAYLOAD_MALFORMED', async () => {
    const good = await payloadOf(small, [Uint8Array.of(1, 2, 3, 4, 5)]);
    const cases: Uint8Array[] = [good.subarray(0, 4), good.subarray(0, 20)];
    const magic = good.slice();
    magic[0] = 0;
    const version = good.slice();
    version[4] = 2;
    const hugeHeader = good.slice();
    new DataView(hugeHeader.buffer).setUint32(5, 1 << 20, false);
    cases.push(magic, version, hugeHeader);
    for (const bytes of cases) {
      expect(await codeOf(() => readRecordPayload([bytes]))).toBe('RECORD_PAYLOAD_MALFORMED');
    }
    const short = await readRecordPayload([good.subarray(0, good.length - 1)]);
    expect(await codeOf(() => collect(short.file))).toBe('RECORD_PAYLOAD_MALFORMED');
    const long = await readRecordPayload([good, Uint8Array.of(9)]);
    expect(await codeOf(() => collect(long.file))).toBe('RECORD_PAYLOAD_MALFORMED');
    expect(await codeOf(() => readRecordPayload([good], { expectedLength: good.length + 1 }))).toBe(
      'RECORD_PAYLOAD_MALFORMED',
    );
  });
});
