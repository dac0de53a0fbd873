// Delivery on the whole local stack, attacked from the platform side (invariants 1, 2, 5, 9):
// someone who controls the cloud project rewrites an accepted container in the records bucket —
// a flipped byte in a chunk or in the manifest, chunks reordered, dropped, or swapped in from
// another record — and points the record's metadata at the new object. The device, holding only
// its key and the hospital key pinned at pairing, must refuse every variant. And a plaintext
// canary (in the file, its name, its title and the patient number) appears in no stored byte,
// log line or push payload afterwards.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureStdout, type StdoutCapture } from '../helpers/stdout-capture.ts';
import { ApiError, responseBytes } from '../../clients/lib/api-client.ts';
import { syncRecords } from '../../sdk/index.ts';
import { fileRecordSink } from '../../sdk/node.ts';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { objectDataPath } from '../../emulator/storage/server.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { type PublicKey } from '../../shared/core/crypto/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import {
  ackResponseSchema,
  isProtocolError,
  newRandomId,
  openRecord,
  recordListResponseSchema,
  recordPayloadLength,
  type ErrorCode,
  type RecordHeader,
} from '../../shared/core/protocol/index.ts';
import { filesContainingCanary, textContainsCanary } from '../helpers/canary.ts';
import {
  collectBytes,
  deliver,
  dropUpload,
  functionPublicKey,
  pairTestDevice,
  registerTestHospital,
  stackBlobStore,
  waitForReceipt,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { chunkSectionAt } from '../helpers/container-bytes.ts';
import { craftUpload, plaintextPieces, sealChunk, type CraftOptions } from '../helpers/crafted-upload.ts';
import { referenceDevice } from '../helpers/reference-device.ts';

const CANARY = 'CANARY-e2e-9d41-plaintext';
const CHUNK = 1024;

/** A container cut into its prefix (header + manifest) and its frames. */
function splitContainer(bytes: Uint8Array): { prefix: Uint8Array; frames: Uint8Array[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 9 + view.getUint32(5, false);
  const prefix = bytes.subarray(0, offset);
  const frames: Uint8Array[] = [];
  while (offset < bytes.length) {
    const length = view.getUint32(offset, false);
    frames.push(bytes.subarray(offset, offset + 4 + length));
    offset += 4 + length;
  }
  return { prefix, frames };
}

/** SHA-256 (base64url) of a container's chunk section, as the manifest's ciphertextSha256. */
function sectionDigest(bytes: Uint8Array): string {
  return createHash('sha256')
    .update(bytes.subarray(chunkSectionAt(bytes)))
    .digest('base64url');
}

/** A record header, with an empty file, whose record payload is a whole number of chunks. */
function paddedHeader(chunkSize: number): RecordHeader {
  for (let pad = 0; ; pad++) {
    const header = { filename: `bound${'-'.repeat(pad)}.txt`, mediaType: 'text/plain', size: 0 };
    const length = recordPayloadLength(header);
    if (length % chunkSize === 0 && length / chunkSize >= 4) return header;
  }
}

function join_(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function flipped(bytes: Uint8Array, index: number): Uint8Array {
  const copy = bytes.slice();
  copy[index]! ^= 0x01;
  return copy;
}

describe('delivery attacked from the platform side', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let blobs: BlobStore;
  let hospital: TestHospital;
  let device: TestDevice;
  let ingestKey: PublicKey;
  let stdout: StdoutCapture;
  const file = new Uint8Array(Buffer.from(`${CANARY} `.repeat(700))); // several chunks of CHUNK bytes

  beforeAll(async () => {
    stdout = captureStdout(); // the functions run in this process: their logs are scanned
    dataDir = await mkdtemp(join(tmpdir(), 'cb-delivery-security-'));
    stack = await startStack({ dataDir, portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    blobs = stackBlobStore(stack);
    hospital = await registerTestHospital(firestore, stack, 'security-hospital');
    device = await pairTestDevice(stack, hospital, `${CANARY}-patient-number`);
    ingestKey = await functionPublicKey(firestore, 'ingest');
  });

  afterAll(async () => {
    stdout?.restore();
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function deliverOne(): Promise<{ recordId: string; objectName: string; container: Uint8Array }> {
    const { sealed, receipt } = await deliver(stack, hospital, ingestKey, {
      patientRef: device.patientRef,
      recipients: [device],
      file,
      chunkSize: CHUNK,
      header: { filename: `${CANARY}.txt`, mediaType: 'text/plain', title: `${CANARY} title` },
    });
    expect(receipt).toMatchObject({ status: 'accepted', recordId: sealed.manifest.recordId });
    const record = await firestore.collection(RECORDS_COLLECTION).doc(sealed.manifest.recordId).get();
    const objectName = record.get('objectName') as string;
    const container = await collectBytes(blobs.read(stack.env.RECORDS_BUCKET!, objectName));
    return { recordId: sealed.manifest.recordId, objectName, container };
  }

  /** Downloads through the records function and opens on the device; the error code, or 'opened'. */
  async function openOnDevice(recordId: string, expected = file): Promise<ErrorCode | 'opened'> {
    const response = await device.api.raw({
      method: 'GET',
      target: `/records/v1/records/${recordId}/content`,
    });
    try {
      const opened = await openRecord(responseBytes(response), {
        device: device.keys,
        hospitalPublicKey: hospital.keys.publicKey,
        hospitalId: hospital.hospitalId,
        recordId,
      });
      const bytes = await collectBytes(opened.file);
      expect(Buffer.from(bytes).equals(Buffer.from(expected))).toBe(true);
      return 'opened';
    } catch (error) {
      if (isProtocolError(error)) return error.code;
      throw error;
    }
  }

  /** Uploads a container as the connector would and waits for ingest's receipt. */
  async function dropAndWait(objectName: string, bytes: Uint8Array, uploadId: string) {
    await dropUpload(stack, objectName, bytes);
    return waitForReceipt(stack, hospital.hospitalId, uploadId, ingestKey);
  }

  /** The platform attacker: replaces the stored container and repoints the record at it. */
  async function replaceStored(recordId: string, objectName: string, bytes: Uint8Array): Promise<void> {
    await blobs.delete(stack.env.RECORDS_BUCKET!, objectName);
    const info = await blobs.createOnly(
      stack.env.RECORDS_BUCKET!,
      objectName,
      (async function* () {
        yield bytes;
      })(),
    );
    await firestore
      .collection(RECORDS_COLLECTION)
      .doc(recordId)
      .update({ generation: info.generation, size: info.size });
  }

  it('the untouched record opens on the device, byte for byte', async () => {
    const { recordId } = await deliverOne();
    expect(await openOnDevice(recordId)).toBe('opened');
  });

  it('R4 refuses every rewrite of the stored container', async () => {
    const other = await deliverOne();
    const variants: Record<string, (c: ReturnType<typeof splitContainer>) => Uint8Array> = {
      'flipped byte in chunk 1': ({ prefix, frames }) =>
        join_([prefix, frames[0]!, flipped(frames[1]!, 40), ...frames.slice(2)]),
      'flipped byte in the last chunk': ({ prefix, frames }) =>
        join_([prefix, ...frames.slice(0, -1), flipped(frames.at(-1)!, 20)]),
      'flipped byte in the manifest': ({ prefix, frames }) =>
        join_([flipped(prefix, prefix.length - 90), ...frames]),
      'chunks 0 and 1 reordered': ({ prefix, frames }) =>
        join_([prefix, frames[1]!, frames[0]!, ...frames.slice(2)]),
      'last chunk dropped': ({ prefix, frames }) => join_([prefix, ...frames.slice(0, -1)]),
      'chunk 1 swapped in from another record': ({ prefix, frames }) =>
        join_([prefix, frames[0]!, splitContainer(other.container).frames[1]!, ...frames.slice(2)]),
    };
    const outcomes: Record<string, string> = {};
    for (const [name, rewrite] of Object.entries(variants)) {
      const { recordId, objectName, container } = await deliverOne();
      const parts = splitContainer(container);
      expect(parts.frames.length).toBeGreaterThan(2);
      await replaceStored(recordId, objectName, rewrite(parts));
      outcomes[name] = await openOnDevice(recordId);
    }
    for (const [name, outcome] of Object.entries(outcomes)) {
      expect([name, outcome]).not.toEqual([name, 'opened']);
    }
    expect(outcomes).toMatchObject({
      'flipped byte in the manifest': expect.stringMatching(/^MANIFEST_(SIGNATURE_)?INVALID$/),
      'last chunk dropped': 'UPLOAD_TRUNCATED',
    });
  });

  it('R4 chunks re-framed under a manifest signed over them (the digest matches) are refused by their context binding', async () => {
    // A platform cannot re-sign ciphertextSha256 (the hospital signs it), so the rewrites above
    // are all caught by the digest at the latest. Here the hospital's own test key signs a
    // manifest over the re-framed chunks, so the digest and every length check out and ingest
    // accepts the upload: only the binding of each chunk to its record id, position and last
    // flag is left to refuse it. The payload is a header and an empty file, cut into 16-byte
    // chunks, so the device needs every chunk's bytes (the last one included) before it can
    // judge anything else.
    const chunkSize = 16;
    const header = paddedHeader(chunkSize);
    const craft = (chunks?: CraftOptions['chunks']) =>
      craftUpload(hospital, {
        patientRef: device.patientRef,
        device,
        header,
        file: new Uint8Array(),
        chunkSize,
        ...(chunks ? { chunks } : {}),
      });
    const otherRecord = newRandomId();
    const variants: Record<string, CraftOptions['chunks'] | undefined> = {
      'the genuine chunks, framed the same way': undefined,
      'chunks 0 and 1 reordered': (make) => {
        const [first, second, ...rest] = make.genuine();
        return [second!, first!, ...rest];
      },
      'chunk 1 replaced by chunk 0 (a position repeated)': (make) => {
        const chunks = make.genuine();
        return [chunks[0]!, chunks[0]!, ...chunks.slice(2)];
      },
      'chunk 1 sealed for another record under the same content key': (make) => {
        const chunks = make.genuine();
        const data = plaintextPieces(make)[1]!;
        chunks[1] = sealChunk(make.key, data, { recordId: otherRecord, index: 1, last: false });
        return chunks;
      },
      'the last chunk dropped': (make) => make.genuine().slice(0, -1),
      'the last chunk resealed without its last flag': (make) => {
        const chunks = make.genuine();
        const pieces = plaintextPieces(make);
        const index = chunks.length - 1;
        chunks[index] = sealChunk(make.key, pieces[index]!, { recordId: make.recordId, index, last: false });
        return chunks;
      },
      'a chunk appended after the last': (make) => {
        const chunks = make.genuine();
        const extra = new Uint8Array(make.chunkSize).fill(0x20);
        return [
          ...chunks,
          sealChunk(make.key, extra, { recordId: make.recordId, index: chunks.length, last: true }),
        ];
      },
    };
    const outcomes: Record<string, string> = {};
    for (const [name, chunks] of Object.entries(variants)) {
      const crafted = await craft(chunks);
      // What makes these cases: the signed digest is that of the chunk section as delivered.
      expect(crafted.manifest.ciphertextSha256, name).toBe(sectionDigest(crafted.bytes));
      const receipt = await dropAndWait(crafted.objectName, crafted.bytes, crafted.manifest.uploadId);
      expect([name, receipt.status]).toEqual([name, 'accepted']);
      outcomes[name] = await openOnDevice(crafted.manifest.recordId, new Uint8Array());
    }
    expect(outcomes).toEqual({
      'the genuine chunks, framed the same way': 'opened',
      'chunks 0 and 1 reordered': 'CHUNK_INVALID',
      'chunk 1 replaced by chunk 0 (a position repeated)': 'CHUNK_INVALID',
      'chunk 1 sealed for another record under the same content key': 'CHUNK_INVALID',
      'the last chunk dropped': 'RECORD_TRUNCATED',
      'the last chunk resealed without its last flag': 'RECORD_TRUNCATED',
      'a chunk appended after the last': 'RECORD_TRAILING_DATA',
    });
  });

  it('R4 the device refuses chunks from another record or position even under the same key, on its open path directly', async () => {
    // The same bindings without the platform in between: the device's open path is handed
    // chunk sections whose manifest (signed by the hospital key) matches them.
    const chunkSize = 16;
    const header = paddedHeader(chunkSize);
    const open = async (chunks: CraftOptions['chunks']) => {
      const crafted = await craftUpload(hospital, {
        patientRef: device.patientRef,
        device,
        header,
        file: new Uint8Array(),
        chunkSize,
        chunks,
      });
      try {
        const opened = await openRecord([crafted.bytes], {
          device: device.keys,
          hospitalPublicKey: hospital.keys.publicKey,
          hospitalId: hospital.hospitalId,
          recordId: crafted.manifest.recordId,
        });
        await collectBytes(opened.file);
        return 'opened';
      } catch (error) {
        return isProtocolError(error) ? `${error.code} at ${error.details.chunkIndex}` : String(error);
      }
    };
    expect(await open((make) => make.genuine())).toBe('opened');
    // Every chunk sealed at the right position but for another record id.
    expect(
      await open((make) =>
        plaintextPieces(make).map((data, index, all) =>
          sealChunk(make.key, data, { recordId: `${make.recordId}x`, index, last: index === all.length - 1 }),
        ),
      ),
    ).toBe('CHUNK_INVALID at 0');
    // Chunk 2 sealed as if it were at position 3.
    expect(
      await open((make) => {
        const chunks = make.genuine();
        chunks[2] = sealChunk(make.key, plaintextPieces(make)[2]!, {
          recordId: make.recordId,
          index: 3,
          last: false,
        });
        return chunks;
      }),
    ).toBe('CHUNK_INVALID at 2');
  });

  it('a failed open is acknowledged with its code, and the listing shows no stored ack', async () => {
    const { recordId, objectName, container } = await deliverOne();
    const { prefix, frames } = splitContainer(container);
    await replaceStored(recordId, objectName, join_([prefix, flipped(frames[0]!, 30), ...frames.slice(1)]));
    const code = await openOnDevice(recordId);
    expect(code).not.toBe('opened');
    await device.api.call(
      {
        method: 'POST',
        target: `/records/v1/records/${recordId}/ack`,
        json: { outcome: 'failed', errorCode: code },
      },
      ackResponseSchema,
    );
    const stored = await firestore.collection(RECORDS_COLLECTION).doc(recordId).get();
    expect(stored.get('acks')).toMatchObject({ [device.deviceId]: { outcome: 'failed', errorCode: code } });
    const listed = await device.api.call(
      { method: 'GET', target: '/records/v1/records?pageSize=100' },
      recordListResponseSchema,
    );
    expect(listed.records.find((r) => r.recordId === recordId)?.acknowledgedAt).toBeUndefined();
  });

  it('R4 a one-chunk container altered in the bucket itself reaches the device as an integrity refusal, never INTERNAL_ERROR', async () => {
    // Not a new object: the stored bytes change under the generation ingest checked, as a
    // platform with disk access (or a storage fault) would change them, so Cloud Storage's own
    // checksum of the object no longer matches. The records function must still answer 200 and
    // serve the object's size in bytes; the device, which checks the signed digest and every
    // chunk, refuses and acknowledges the refusal with its stable code.
    const phone = await pairTestDevice(stack, hospital, 'bucket-alteration-patient');
    const reference = await referenceDevice(stack, hospital, phone);
    const integrity = expect.stringMatching(/^(DIGEST_MISMATCH|CHUNK_INVALID)$/);
    const inChunk = (stored: Buffer) => stored.length - 20; // inside the one chunk's ciphertext
    const alterations: Record<
      string,
      { alter: (stored: Buffer) => Buffer; expected: object; cut?: boolean }
    > = {
      'a byte flipped (same size)': {
        alter: (stored) => Buffer.from(flipped(stored, inChunk(stored))),
        expected: { outcome: 'failed', errorCode: integrity },
      },
      'bytes inserted into the chunk (bigger)': {
        alter: (stored) =>
          Buffer.concat([
            stored.subarray(0, inChunk(stored)),
            Buffer.from('xx'),
            stored.subarray(inChunk(stored)),
          ]),
        expected: { outcome: 'failed', errorCode: integrity },
      },
      // Shorter than the size filed (never so in Cloud Storage, where a generation's bytes
      // are fixed): the 200 and its content-length are out before the store runs dry, so the
      // connection is cut, and the device sees its download end early.
      'the end cut off (smaller)': {
        alter: (stored) => stored.subarray(0, stored.length - 7),
        expected: { outcome: 'failed', errorCode: 'UPLOAD_TRUNCATED' },
        cut: true,
      },
      // The function serves the size ingest filed, so bytes after it never leave: the device
      // gets the accepted container and stores it.
      'bytes appended after the end (bigger)': {
        alter: (stored) => Buffer.concat([stored, Buffer.from('appended by the platform')]),
        expected: { outcome: 'stored', file: expect.any(String) },
      },
    };
    for (const [name, { alter, expected, cut }] of Object.entries(alterations)) {
      const { sealed } = await deliver(stack, hospital, ingestKey, {
        patientRef: phone.patientRef,
        recipients: [phone],
        file: new Uint8Array(Buffer.from(`one chunk, altered: ${name}`)),
      });
      const recordId = sealed.manifest.recordId;
      const record = await firestore.collection(RECORDS_COLLECTION).doc(recordId).get();
      const path = objectDataPath(
        join(dataDir, 'storage'),
        stack.env.RECORDS_BUCKET!,
        record.get('objectName') as string,
        Number(record.get('generation')),
      );
      const stored = await readFile(path);
      expect(splitContainer(stored).frames, name).toHaveLength(1);
      await writeFile(path, alter(stored));

      const logged = stdout.lines.length;
      // The function's answer itself: 200 and exactly the filed size, or a cut connection
      // ('network'), which would show here and not as a code.
      const answer = await phone.api
        .raw({ method: 'GET', target: `/records/v1/records/${recordId}/content` })
        .then(
          async (response) => ({
            status: response.status,
            bytes: await response.arrayBuffer().then(
              (body) => body.byteLength,
              () => 'network',
            ),
          }),
          (error: unknown) => (error instanceof ApiError ? { status: error.status } : 'network'),
        );
      expect([name, answer]).toEqual([
        name,
        { status: 200, bytes: cut ? 'network' : Number(record.get('size')) },
      ]);
      // The reference device's own sync: download, verify, decrypt, acknowledge. (Records it
      // failed before are tried again; only this one is judged here.)
      const results = await syncRecords(
        reference.home,
        reference.enrolment,
        fileRecordSink(reference.outDir),
      );
      const result = results.find((one) => one.recordId === recordId);
      expect([name, result]).toEqual([name, { recordId, ...expected }]);
      const acked = await firestore.collection(RECORDS_COLLECTION).doc(recordId).get();
      expect([name, acked.get('acks')]).toMatchObject([
        name,
        {
          [phone.deviceId]:
            result?.outcome === 'failed'
              ? { outcome: 'failed', errorCode: result.errorCode }
              : { outcome: 'stored' },
        },
      ]);
      const functionLines = stdout.lines.slice(logged).filter((line) => line.includes('"records"'));
      expect(functionLines.length, name).toBeGreaterThan(0); // the records function's lines are scanned
      expect([
        name,
        functionLines.filter((line) => /INTERNAL_ERROR|INTEGRITY|"status":5\d\d/.test(line)),
      ]).toEqual([name, []]);
    }
  }, 120_000); // four deliveries, each followed by a sync that retries the earlier failures

  it('leaves the canary in no stored byte, log line or push payload', async () => {
    const pushes = await fetch(`${stack.env.FCM_EMULATOR_URL}/_recorder/messages`).then((r) => r.text());
    expect(pushes).toContain(device.fcmToken); // pushes were recorded, and are scanned
    expect(textContainsCanary(pushes, CANARY)).toBe(false);
    expect(stdout.lines.length).toBeGreaterThan(0);
    expect(stdout.lines.filter((line) => textContainsCanary(line, CANARY))).toEqual([]);
    // Close the stack so Firestore exports its state to disk, then scan every file it kept.
    await firestore.terminate();
    await stack.close();
    expect(await filesContainingCanary(dataDir, CANARY)).toEqual([]);
    // The scan does reach stored state: Firestore's export holds the device's push token.
    expect(await filesContainingCanary(join(dataDir, 'firestore'), device.fcmToken)).not.toEqual([]);
  });
});
