// Property-based fuzzing (fast-check) of the parsers every untrusted byte goes through: the
// upload container and the device's whole open path, the invitation QR text, and the JSON body
// schemas of the HTTP APIs. Generated and mutated input must end in a ProtocolError with a code
// from the catalogue (or, for untouched input, in the original result): never another
// exception, never INTERNAL_ERROR or another 5xx code, never a hang. CI runs FUZZ_RUNS
// (default 1000) cases per property; `npm run fuzz` runs thousands.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, type KeyPair } from '../../shared/core/crypto/index.ts';
import {
  ackBodySchema,
  createInvitationRequestSchema,
  decodeInvitationQr,
  encodeInvitationQr,
  eraseBodySchema,
  isErrorCode,
  isProtocolError,
  memorySpool,
  newInvitationToken,
  newRandomId,
  openRecord,
  pairBodySchema,
  parseJsonBody,
  pushTokenBodySchema,
  readUploadContainer,
  sealUpload,
} from '../../shared/core/protocol/index.ts';
import { collectBytes } from '../helpers/delivery-fixture.ts';
import { recordEvidence } from '../helpers/evidence.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);

/**
 * The outcome must be a catalogued refusal; anything else fails the property. INTERNAL_ERROR
 * (or any code a function would answer with a 5xx) is in the catalogue but is not a refusal:
 * it says the parser met input it did not expect, which is what the fuzzer is looking for.
 */
async function refusedWithCatalogueCode(run: () => Promise<unknown> | unknown): Promise<'ok' | string> {
  try {
    await run();
    return 'ok';
  } catch (error) {
    if (isProtocolError(error) && isErrorCode(error.code) && error.httpStatus < 500) return error.code;
    throw error;
  }
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant('overwrite' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = new Uint8Array(bytes);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.kind === 'append' ? 0 : (m as { at: number }).at % out.length;
    if (m.kind === 'flip' && out.length > 0) out[at]! ^= 1 << m.bit;
    if (m.kind === 'truncate') out = out.subarray(0, at);
    if (m.kind === 'append') out = new Uint8Array(Buffer.concat([out, m.bytes]));
    if (m.kind === 'insert')
      out = new Uint8Array(Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]));
    if (m.kind === 'overwrite') out.set(m.bytes.subarray(0, Math.max(0, out.length - at)), at);
  }
  return out;
}

describe('Z2 fuzzing the parsers of untrusted input', () => {
  let hospital: KeyPair;
  let device: KeyPair;
  let container: Uint8Array;
  let recordId: string;
  const file = new Uint8Array(randomBytes(200));

  beforeAll(async () => {
    hospital = generateKeyPair();
    device = generateKeyPair();
    const spool = memorySpool();
    const sealed = await sealUpload({
      hospitalId: 'st-fuzz-zh',
      hospital: hospital.privateKey,
      patientRef: newRandomId(),
      operatorRef: newRandomId(),
      recipients: [{ deviceId: device.publicKey.fingerprint, publicKey: device.publicKey }],
      contentClass: 'document',
      header: { filename: 'f.pdf', mediaType: 'application/pdf', size: file.length },
      file: [file],
      spool,
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + 86_400_000),
      chunkSize: 64,
    });
    recordId = sealed.manifest.recordId;
    container = await collectBytes(sealed.bytes());
  });

  const open = (bytes: Uint8Array) =>
    refusedWithCatalogueCode(async () => {
      const opened = await openRecord([bytes], {
        device,
        hospitalPublicKey: hospital.publicKey,
        hospitalId: 'st-fuzz-zh',
        recordId,
      });
      const parts: Uint8Array[] = [];
      for await (const part of opened.file) parts.push(part);
      if (!Buffer.concat(parts).equals(Buffer.from(file))) throw new Error('opened to different bytes');
    });

  it('a mutated container opens to the original file or is refused with a catalogued code', async () => {
    expect(await open(container)).toBe('ok');
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (mutations) => {
        const mutated = mutate(container, mutations);
        const outcome = await open(mutated);
        // Only bytes equal to the original may open.
        if (outcome === 'ok') expect(Buffer.from(mutated).equals(Buffer.from(container))).toBe(true);
      }),
      { numRuns: RUNS },
    );
    recordEvidence({ kind: 'fuzz', target: 'container open path (mutated containers)', cases: RUNS });
  });

  it('arbitrary bytes never get past the container reader without a catalogued code', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        const outcome = await refusedWithCatalogueCode(async () => {
          const read = await readUploadContainer([bytes]);
          for await (const chunk of read.chunks()) void chunk;
        });
        expect(outcome).not.toBe('ok');
      }),
      { numRuns: RUNS },
    );
    recordEvidence({ kind: 'fuzz', target: 'container reader (arbitrary bytes)', cases: RUNS });
  });

  it('QR text: mutations and arbitrary strings decode canonically or are refused with a catalogued code', async () => {
    const qr = encodeInvitationQr({
      apiBase: 'https://api.example.nl',
      hospitalId: 'st-fuzz-zh',
      hospitalPublicKey: hospital.publicKey,
      invitationId: newRandomId(),
      token: newInvitationToken(),
      bindingSecret: new Uint8Array(randomBytes(32)),
      witnessKey: new Uint8Array(randomBytes(32)),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 3 })).map(([at, s]) => {
            const i = at % qr.length;
            return qr.slice(0, i) + s + qr.slice(i + 1);
          }),
        ),
        async (text) => {
          let decoded: ReturnType<typeof decodeInvitationQr> | undefined;
          await refusedWithCatalogueCode(() => (decoded = decodeInvitationQr(text)));
          // A changed character may still be a valid QR (it has no checksum of its own; the pair
          // request and the hospital's key check what it says). It must then be canonical: one
          // QR text per invitation, so nothing hides in alternative encodings.
          if (decoded) expect(encodeInvitationQr(decoded)).toBe(text);
        },
      ),
      { numRuns: RUNS },
    );
    recordEvidence({ kind: 'fuzz', target: 'invitation QR text', cases: RUNS });
  });

  it('API bodies: arbitrary JSON and bytes are accepted by their schema or refused as INVALID_REQUEST', async () => {
    const schemas = [
      createInvitationRequestSchema,
      pairBodySchema,
      ackBodySchema,
      pushTokenBodySchema,
      eraseBodySchema,
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...schemas),
        fc.oneof(
          fc.json().map((text) => new TextEncoder().encode(text)),
          fc.uint8Array({ maxLength: 256 }),
        ),
        async (schema, body) => {
          const outcome = await refusedWithCatalogueCode(() => parseJsonBody(schema, body));
          expect(['ok', 'INVALID_REQUEST', 'PAYLOAD_TOO_LARGE']).toContain(outcome);
        },
      ),
      { numRuns: RUNS },
    );
    recordEvidence({ kind: 'fuzz', target: 'API body schemas', cases: RUNS });
  });
});
