// Fuzzing every HTTP endpoint on the local stack (threat model Z1). Each case takes a genuine
// request to one endpoint, made by the party entitled to it, and breaks it in one way the
// endpoint must refuse: a signature, key, timestamp or header that is wrong; a body that is not
// JSON, has a field of the wrong type or one too many; an id that names nothing; a query where
// none belongs; another method. The answer must be a 4xx whose body carries a catalogued code,
// within seconds; never a 5xx, never INTERNAL_ERROR, never a hang. At the end, nothing stored
// has changed: every Firestore document (request nonces aside, which an authentic signature
// leaves by design) and every object.
import type { Firestore } from '@google-cloud/firestore';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../emulator/stack.ts';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { createStorage } from '../../shared/adapters/google-clients.ts';
import { generateKeyPair, type PrivateKey } from '../../shared/core/crypto/index.ts';
import {
  deviceKeyId,
  ERROR_CODES,
  errorBodySchema,
  formatTimestamp,
  hospitalKeyId,
  isErrorCode,
  newInvitationToken,
  newRandomId,
  REQUEST_SKEW_SECONDS,
  signRequest,
  tokenDigest,
} from '../../shared/core/protocol/index.ts';
import {
  deliver,
  functionPublicKey,
  inviteTestPatient,
  pairBodyFor,
  pairTestDevice,
  registerTestHospital,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { recordEvidence } from '../helpers/evidence.ts';
import { runSequencer } from '../helpers/audit-logs.ts';
import { useLocalStack } from '../helpers/local-stack.ts';

const RUNS = Number(process.env.FUZZ_HTTP_RUNS ?? 1000);

type Method = 'GET' | 'POST' | 'PUT';

interface Signer {
  readonly keyId: string;
  readonly privateKey: PrivateKey;
}

/** A genuine request to one endpoint. */
interface Template {
  readonly name: string;
  readonly method: Method;
  /** From the function's prefix on: /pairing/v1/…, /records/v1/…, /retention */
  readonly path: string;
  /** Which path segment is an id, if any (the index after splitting on '/'). */
  readonly idSegment?: number;
  readonly body?: Record<string, unknown>;
  readonly signer?: Signer;
  /**
   * The answer to a well-formed id that names nothing, where it is not a refusal: a hospital
   * asking for an unknown patient's devices sees the empty list an unpaired patient has, so the
   * answer cannot tell whether the patient exists.
   */
  readonly unknownIdAnswer?: string;
}

type Breakage =
  | { kind: 'signature flipped'; at: number }
  | { kind: 'signed by another key' }
  | { kind: 'timestamp outside the window'; seconds: number }
  | { kind: 'unknown key id' }
  | { kind: 'a signing header dropped'; which: number }
  | { kind: 'body not JSON'; bytes: Uint8Array }
  | { kind: 'a field of the wrong type'; value: unknown }
  | { kind: 'an unknown field'; name: string; value: unknown }
  | { kind: 'an id that names nothing'; id: string }
  | { kind: 'an unexpected query'; name: string; value: string }
  | { kind: 'another method'; method: string };

const SIGNING_HEADERS = ['cb-key-id', 'cb-timestamp', 'cb-nonce', 'cb-signature'];

const breakage: fc.Arbitrary<Breakage> = fc.oneof(
  fc.record({ kind: fc.constant('signature flipped' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('signed by another key' as const) }),
  fc.record({
    kind: fc.constant('timestamp outside the window' as const),
    seconds: fc.oneof(
      fc.integer({ min: REQUEST_SKEW_SECONDS + 5, max: 10 * 365 * 86400 }),
      fc.integer({ min: -10 * 365 * 86400, max: -(REQUEST_SKEW_SECONDS + 5) }),
    ),
  }),
  fc.record({ kind: fc.constant('unknown key id' as const) }),
  fc.record({ kind: fc.constant('a signing header dropped' as const), which: fc.nat({ max: 3 }) }),
  fc.record({
    kind: fc.constant('body not JSON' as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }).filter((bytes) => !parsesAsJson(bytes)),
  }),
  fc.record({
    kind: fc.constant('a field of the wrong type' as const),
    value: fc.jsonValue({ maxDepth: 2 }),
  }),
  fc.record({
    kind: fc.constant('an unknown field' as const),
    name: fc.string({ minLength: 1, maxLength: 20 }),
    value: fc.jsonValue({ maxDepth: 2 }),
  }),
  fc.record({
    kind: fc.constant('an id that names nothing' as const),
    id: fc.oneof(
      fc.string({ minLength: 1, maxLength: 80 }),
      fc.constant('').map(() => newRandomId()),
    ),
  }),
  fc.record({
    kind: fc.constant('an unexpected query' as const),
    name: fc
      .string({ minLength: 1, maxLength: 12 })
      .filter((name) => name !== 'pageSize' && name !== 'pageToken'),
    value: fc.string({ maxLength: 12 }),
  }),
  fc.record({
    kind: fc.constant('another method' as const),
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
  }),
);

function parsesAsJson(bytes: Uint8Array): boolean {
  try {
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    return true;
  } catch {
    return false;
  }
}

/** Whether a breakage applies to a template (a body breakage needs a body, and so on). */
function applies(template: Template, broken: Breakage): boolean {
  switch (broken.kind) {
    case 'signature flipped':
    case 'signed by another key':
    case 'timestamp outside the window':
    case 'unknown key id':
    case 'a signing header dropped':
      return template.signer !== undefined;
    case 'body not JSON':
    case 'an unknown field':
      return template.body !== undefined;
    case 'a field of the wrong type':
      return template.body !== undefined && Object.keys(template.body).length > 0;
    case 'an id that names nothing':
      return template.idSegment !== undefined;
    case 'an unexpected query':
      return true;
    case 'another method':
      return broken.method !== template.method;
  }
}

/** The JSON type of a value, telling arrays and null apart from objects. */
function jsonType(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

const encoder = new TextEncoder();

interface BrokenRequest {
  readonly method: string;
  readonly target: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
}

function breakRequest(template: Template, broken: Breakage, audience: string): BrokenRequest {
  let method: string = template.method;
  let target = template.path;
  let body: Uint8Array | undefined = template.body
    ? encoder.encode(JSON.stringify(template.body))
    : undefined;
  let signer = template.signer;
  let now = new Date();
  switch (broken.kind) {
    case 'body not JSON':
      body = broken.bytes;
      break;
    case 'a field of the wrong type': {
      const fields = Object.keys(template.body!);
      const field = fields[broken.value === null ? 0 : JSON.stringify(broken.value).length % fields.length]!;
      // The same JSON type could be valid ("a string for a string"); a string becomes a number.
      const value = jsonType(broken.value) === jsonType(template.body![field]) ? 12345 : broken.value;
      body = encoder.encode(JSON.stringify({ ...template.body, [field]: value }));
      break;
    }
    case 'an unknown field': {
      const name = broken.name in template.body! ? `${broken.name}_extra` : broken.name;
      body = encoder.encode(JSON.stringify({ ...template.body, [name]: broken.value }));
      break;
    }
    case 'an id that names nothing': {
      const segments = target.split('/');
      segments[template.idSegment!] = encodeURIComponent(broken.id);
      target = segments.join('/');
      break;
    }
    case 'an unexpected query':
      target = `${target}?${encodeURIComponent(broken.name)}=${encodeURIComponent(broken.value)}`;
      break;
    case 'another method':
      method = broken.method;
      if (method === 'GET' || method === 'DELETE') body = undefined;
      break;
    case 'signed by another key':
      signer = { keyId: signer!.keyId, privateKey: generateKeyPair().privateKey };
      break;
    case 'unknown key id':
      signer = {
        keyId: deviceKeyId(generateKeyPair().publicKey.fingerprint),
        privateKey: signer!.privateKey,
      };
      break;
    case 'timestamp outside the window':
      now = new Date(now.getTime() + broken.seconds * 1000);
      break;
    default:
      break;
  }
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
  if (signer) {
    const signed = signRequest({
      audience,
      method: method === 'GET' || method === 'POST' || method === 'PUT' ? method : 'POST',
      target,
      body: body ?? new Uint8Array(0),
      keyId: signer.keyId,
      privateKey: signer.privateKey,
      now,
    });
    for (const [name, value] of Object.entries(signed)) headers[name.toLowerCase()] = value;
    if (broken.kind === 'signature flipped') {
      const signature = headers['cb-signature']!;
      const at = broken.at % signature.length;
      const replacement = signature[at] === 'A' ? 'B' : 'A';
      headers['cb-signature'] = `${signature.slice(0, at)}${replacement}${signature.slice(at + 1)}`;
    }
    if (broken.kind === 'a signing header dropped') delete headers[SIGNING_HEADERS[broken.which]!];
  }
  return { method, target, headers, ...(body === undefined ? {} : { body }) };
}

describe('Z1 fuzzing every HTTP endpoint on the stack', () => {
  const local = useLocalStack('fuzz-http');
  let stack: Stack;
  let firestore: Firestore;
  let hospital: TestHospital;
  let device: TestDevice;
  let templates: Template[];

  beforeAll(async () => {
    ({ stack, firestore } = local);
    hospital = await registerTestHospital(firestore, stack, 'st-fuzz-http');
    device = await pairTestDevice(stack, hospital, 'fuzz-patient');
    const { sealed } = await deliver(stack, hospital, await functionPublicKey(firestore, 'ingest'), {
      patientRef: device.patientRef,
      recipients: [device],
      file: encoder.encode('a letter the fuzzer must never change'),
    });
    const recordId = sealed.manifest.recordId;
    // A pair request for an invitation that does not exist: every breakage of it is refused
    // before an invitation's attempt counter could move (brute force is threat P1's test).
    const pending = await inviteTestPatient(hospital, 'fuzz-pending');
    const unknownInvitation = { ...pending, invitationId: newRandomId() };
    const hospitalSigner = {
      keyId: hospitalKeyId(hospital.hospitalId, hospital.keys.publicKey),
      privateKey: hospital.keys.privateKey,
    };
    const deviceSigner = { keyId: deviceKeyId(device.deviceId), privateKey: device.keys.privateKey };
    templates = [
      {
        name: 'POST /pairing/v1/invitations',
        method: 'POST',
        path: '/pairing/v1/invitations',
        signer: hospitalSigner,
        body: {
          invitationId: pending.invitationId, // taken: even an intact copy could not create one
          patientRef: pending.patientRef,
          tokenSha256: tokenDigest(newInvitationToken()),
          expiresAt: formatTimestamp(new Date(Date.now() + 600_000)),
          maxAttempts: 3,
          operatorRef: hospital.operatorRef,
        },
      },
      {
        name: 'POST /pairing/v1/pair',
        method: 'POST',
        path: '/pairing/v1/pair',
        body: pairBodyFor(unknownInvitation, generateKeyPair(), 'fcm-fuzz'),
      },
      {
        name: 'GET /pairing/v1/patients/{ref}/devices',
        method: 'GET',
        path: `/pairing/v1/patients/${device.patientRef}/devices`,
        idSegment: 4,
        signer: hospitalSigner,
        unknownIdAnswer: '{"devices":[]}',
      },
      {
        name: 'POST /pairing/v1/devices/{id}/revoke',
        method: 'POST',
        path: `/pairing/v1/devices/${device.deviceId}/revoke`,
        idSegment: 4,
        signer: hospitalSigner,
        body: { operatorRef: hospital.operatorRef },
      },
      {
        name: 'POST /pairing/v1/records/{id}/recall',
        method: 'POST',
        path: `/pairing/v1/records/${recordId}/recall`,
        idSegment: 4,
        signer: hospitalSigner,
        body: { operatorRef: hospital.operatorRef },
      },
      { name: 'GET /records/v1/records', method: 'GET', path: '/records/v1/records', signer: deviceSigner },
      {
        name: 'GET /records/v1/records/{id}/content',
        method: 'GET',
        path: `/records/v1/records/${recordId}/content`,
        idSegment: 4,
        signer: deviceSigner,
      },
      {
        name: 'POST /records/v1/records/{id}/ack',
        method: 'POST',
        path: `/records/v1/records/${recordId}/ack`,
        idSegment: 4,
        signer: deviceSigner,
        body: { outcome: 'stored' },
      },
      { name: 'GET /records/v1/devices', method: 'GET', path: '/records/v1/devices', signer: deviceSigner },
      {
        name: 'POST /records/v1/devices/{id}/revoke',
        method: 'POST',
        path: `/records/v1/devices/${device.deviceId}/revoke`,
        idSegment: 4,
        signer: deviceSigner,
        body: {},
      },
      { name: 'GET /records/v1/signing-key', method: 'GET', path: '/records/v1/signing-key' },
      {
        name: 'GET /records/v1/access-log',
        method: 'GET',
        path: '/records/v1/access-log',
        signer: deviceSigner,
      },
      {
        name: 'POST /records/v1/patient/erase',
        method: 'POST',
        path: '/records/v1/patient/erase',
        signer: deviceSigner,
        body: { confirm: 'erase-everything' },
      },
      {
        name: 'PUT /records/v1/devices/self/push-token',
        method: 'PUT',
        path: '/records/v1/devices/self/push-token',
        signer: deviceSigner,
        body: { fcmToken: 'fcm-fuzz-rotated' },
      },
      {
        name: 'POST /retention',
        method: 'POST',
        path: '/retention',
        body: { jobId: 'fuzz-run' },
      },
    ];
  });

  /** Every stored byte that a refused request must leave alone. */
  async function storedState(): Promise<string> {
    const parts: string[] = [];
    for (const collection of await firestore.listCollections()) {
      if (collection.id === PAIRING_COLLECTIONS.nonces) continue;
      for (const doc of (await collection.get()).docs) {
        parts.push(`${collection.id}/${doc.id} ${JSON.stringify(doc.data())}`);
      }
    }
    const storage = createStorage(stack.env.GCLOUD_PROJECT!, stack.env);
    const [buckets] = await storage.getBuckets();
    for (const bucket of buckets) {
      const [files] = await bucket.getFiles();
      for (const file of files) parts.push(`${bucket.name}/${file.name} ${file.metadata.generation}`);
    }
    return parts.sort().join('\n');
  }

  it(
    `refuses ${RUNS} broken requests with a catalogued 4xx and changes nothing stored`,
    async () => {
      // The local scheduler runs the sequencer every minute; sequenced now, it has nothing left to
      // change while the fuzzing runs, so the comparison sees only what the requests did.
      await runSequencer(stack);
      const before = await storedState();
      const counts = new Map<string, number>();
      const statuses = new Map<number, number>();
      const cases = fc
        .tuple(fc.nat({ max: templates.length - 1 }), breakage)
        .map(([index, broken]) => ({ template: templates[index]!, broken }))
        .filter(({ template, broken }) => applies(template, broken));
      await fc.assert(
        fc.asyncProperty(cases, async ({ template, broken }) => {
          const request = breakRequest(template, broken, stack.env.FUNCTIONS_BASE_URL!);
          const response = await fetch(`${stack.env.FUNCTIONS_BASE_URL}${request.target}`, {
            method: request.method,
            headers: request.headers,
            ...(request.body === undefined ? {} : { body: new Uint8Array(request.body) }),
            redirect: 'manual',
            signal: AbortSignal.timeout(10_000),
          });
          const text = await response.text();
          if (broken.kind === 'an id that names nothing' && response.status === 200) {
            expect(text).toBe(template.unknownIdAnswer);
            counts.set(template.name, (counts.get(template.name) ?? 0) + 1);
            statuses.set(200, (statuses.get(200) ?? 0) + 1);
            return;
          }
          if (response.status < 400 || response.status >= 500) {
            throw new Error(
              `${template.name}, ${broken.kind}: answered ${response.status} ${text.slice(0, 200)}`,
            );
          }
          const parsed = errorBodySchema.safeParse(JSON.parse(text));
          if (!parsed.success || !isErrorCode(parsed.data.error.code)) {
            throw new Error(`${template.name}, ${broken.kind}: no catalogued code in ${text.slice(0, 200)}`);
          }
          // INTERNAL_ERROR is catalogued but is no refusal: whatever its status, it means the
          // function met a request it did not expect, which is what this fuzzer looks for.
          if (
            ERROR_CODES[parsed.data.error.code].status >= 500 ||
            parsed.data.error.code === 'INTERNAL_ERROR'
          ) {
            throw new Error(`${template.name}, ${broken.kind}: answered ${parsed.data.error.code}`);
          }
          counts.set(template.name, (counts.get(template.name) ?? 0) + 1);
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        }),
        { numRuns: RUNS },
      );
      expect(await storedState()).toBe(before);
      // Every endpoint was reached by some broken request.
      expect([...counts.keys()].sort()).toEqual(templates.map((template) => template.name).sort());
      for (const [target, cases] of counts) recordEvidence({ kind: 'fuzz', target: `HTTP ${target}`, cases });
      recordEvidence({
        kind: 'attack',
        threat: 'Z1',
        attack: `${RUNS} broken requests over ${templates.length} endpoints`,
        outcome: [...statuses]
          .map(
            ([status, count]) =>
              `${status === 200 ? "200 (an unknown patient's empty device list)" : status}×${count}`,
          )
          .join(', '),
      });
    },
    30_000 + RUNS * 20,
  );
});
