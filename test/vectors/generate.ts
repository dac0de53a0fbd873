// Generates the conformance vectors in vectors/ (one JSON file per area of docs/PROTOCOL.md) for
// implementers in Swift and Kotlin, from the reference library itself. docs/NATIVE.md says which
// Themis call each vector tests; test/unit/conformance-vectors.test.ts regenerates them in memory,
// compares them with the committed files and checks every vector against the library.
//
// Run (Node 22, as package.json requires; a system Node 20 cannot load .ts):
//   npx node test/vectors/generate.ts           rewrite vectors/*.json (formatted by prettier)
//   npx node test/vectors/generate.ts --check   exit 1 if any committed file differs
// Deterministic parts (HMAC derivations, canonical encodings, contexts, payloads) are recomputed
// exactly. Randomised parts (ECDSA signatures, Secure Message, Secure Cell IVs) are kept from the
// committed file while the library still accepts them (common.ts, keepOrMake), so a rerun changes
// nothing unless the code did.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';
import { openFileCustody } from '../../clients/connector/custody/file.ts';
import {
  decryptRecord,
  encryptRecord,
  importPublicKey,
  recordChunkContext,
  sign,
  unwrapContentKey,
  verify,
} from '../../shared/core/crypto/index.ts';
import type { PrivateKey, PublicKey } from '../../shared/core/crypto/index.ts';
import { contentKeyFromBytes } from '../../shared/core/crypto/keys.ts';
import { sealCell, openCell } from '../../shared/core/crypto/secure-cell-seal.ts';
import {
  bindingProofText,
  canonicalApiBase,
  canonicalJson,
  ChunkSectionWriter,
  decodeInvitationQr,
  deriveBindingSecret,
  deriveOperatorRef,
  derivePatientRef,
  encodeInvitationQr,
  encodeRecordPayload,
  hospitalKeyId,
  deviceKeyId,
  openRecord,
  readUploadContainer,
  requestSigningString,
  bodyDigest,
  signDeletionReceipt,
  signDeviceCertificate,
  signManifest,
  signPairRequest,
  signReceipt,
  signRequest,
  tokenDigest,
  verifyBindingProof,
  verifyRequest,
  writeUploadContainer,
  DEVICE_CERTIFICATE_TYPE,
  PAIR_REQUEST_TYPE,
  RECEIPT_TYPE,
  UPLOAD_MANIFEST_TYPE,
  DELETION_RECEIPT_TYPE,
} from '../../shared/core/protocol/index.ts';
import type {
  DeletionReceipt,
  DeviceCertificate,
  HmacKey,
  KeyKind,
  PairRequest,
  Receipt,
  RecordHeader,
  UploadManifest,
} from '../../shared/core/protocol/index.ts';
import { generateTlogVectors } from '../fixtures/generate-tlog-vectors.ts';
import { linkingFile } from './linking.ts';
import {
  b64,
  committedAt,
  committedNamed,
  concat,
  counting,
  errorCodeOf,
  flipByte,
  hex,
  highS,
  hmac,
  keepOrMake,
  KEY_NAMES,
  keyWrapPayload,
  SEED_PREFIX,
  secureMessageDecrypt,
  secureMessageEncrypt,
  seed,
  sha256,
  signedParts,
  testKeys,
  unb64,
  unhex,
  utf8,
  verifyAs,
  witnessKey,
} from './common.ts';
import type { DocumentKind, KeyName, TestKeys } from './common.ts';

export const VECTOR_FILES = [
  'keys',
  'derivations',
  'signatures',
  'containers',
  'key-wraps',
  'requests',
  'qr',
  'linking',
  'transparency',
] as const;
export type VectorFile = (typeof VECTOR_FILES)[number];
export type VectorSet = Record<VectorFile, unknown>;

export const VECTOR_DIR = new URL('../../vectors/', import.meta.url);

const CONVENTIONS =
  'Fields ending in Hex are bytes as lower-case hex; fields ending in Utf8 are text to encode as UTF-8; every other value is as it appears on the wire (base64url without padding for keys, ids, signed documents and headers; JSON objects as parsed). Keys are named as in keys.json (TEST KEYS, derived from public labels: never use them for anything real).';

// ---- Fixed inputs (ids count up from a byte, as PROTOCOL.md's own examples do) ----

const API_BASE = 'https://api.clinic-bridge.example';
const HOSPITAL_ID = 'st-example-zh';
const INVITATION_ID = b64(counting(0x10, 16));
const TOKEN = b64(counting(0x40, 32));
const UPLOAD_ID = b64(counting(0x00, 16));
const RECORD_ID = b64(counting(0x80, 16));
const OTHER_RECORD_ID = b64(counting(0x90, 16));
const PATIENT_NUMBER = '123456789';
const STAFF_ID = 'frontdesk.jansen';
const MASTER_SECRET_LABEL = `${SEED_PREFIX}master secret`;
const CONTENT_KEY_LABEL = `${SEED_PREFIX}content key`;
const DERIVED_KEY_LABELS = { pseudonym: 'clinic-bridge/pseudonym-key', binding: 'clinic-bridge/binding-key' };

interface Context {
  readonly keys: TestKeys;
  readonly previous: Partial<VectorSet>;
  readonly masterSecret: Uint8Array;
  readonly pseudonymKey: HmacKey;
  readonly bindingKeyOf: (version: number) => HmacKey;
  readonly contentKey: Uint8Array;
  readonly patientRef: string;
  readonly operatorRef: string;
  readonly bindingSecret: Uint8Array;
  readonly bindingProof: string;
}

const pub = (ctx: Context, name: KeyName): PublicKey => ctx.keys[name].pair.publicKey;
const priv = (ctx: Context, name: KeyName): PrivateKey => ctx.keys[name].pair.privateKey;
const deviceId = (ctx: Context, name: KeyName = 'device'): string => pub(ctx, name).fingerprint;

/** The reference connector's derived key (clients/connector/custody/file.ts), by the spec's formula. */
function derivedKeyBytes(master: Uint8Array, label: string, version: number): Uint8Array {
  return hmac(master, utf8(label), Uint8Array.of(version >> 8, version & 0xff));
}

function context(previous: Partial<VectorSet>): Context {
  const keys = testKeys();
  const masterSecret = seed('master secret');
  const custody = openFileCustody({
    publicKey: keys.hospital.publicKey,
    privateKey: keys.hospital.privateKey,
    masterSecret: b64(masterSecret),
    bindingKeyVersion: 1,
  });
  const pseudonymKey = custody.pseudonymKey;
  const patientRef = derivePatientRef(pseudonymKey, PATIENT_NUMBER);
  const bindingSecret = deriveBindingSecret(custody.bindingKey, INVITATION_ID, patientRef);
  return {
    keys,
    previous,
    masterSecret,
    pseudonymKey,
    bindingKeyOf: (version) => custody.bindingKeyOf(version),
    contentKey: seed('content key'),
    patientRef,
    operatorRef: deriveOperatorRef(pseudonymKey, STAFF_ID),
    bindingSecret,
    bindingProof: bindingProofText(bindingSecret, INVITATION_ID, keys.device.pair.publicKey),
  };
}

// ---- keys.json ----

function keysFile(ctx: Context): unknown {
  const witness = witnessKey();
  return {
    description: `TEST-ONLY keys of the Clinic Bridge conformance vectors. Each EC key's private scalar is SHA-256 of its seedLabel (UTF-8) reduced mod the P-256 order; the HMAC secrets and the content key are SHA-256 of theirs; the witness's Ed25519 seed likewise. They are public: never use them, or anything derived from them, outside tests. EC keys are Themis 45-byte containers (PROTOCOL.md §2.1), base64url; fingerprint = base64url(SHA-256(public key bytes)). ${CONVENTIONS}`,
    ec: Object.fromEntries(
      KEY_NAMES.map((name) => {
        const key = ctx.keys[name];
        return [
          name,
          {
            seedLabel: key.seedLabel,
            privateKey: key.privateKey,
            publicKey: key.publicKey,
            fingerprint: key.pair.publicKey.fingerprint,
          },
        ];
      }),
    ),
    masterSecret: { seedLabel: MASTER_SECRET_LABEL, valueHex: hex(ctx.masterSecret) },
    contentKey: { seedLabel: CONTENT_KEY_LABEL, valueHex: hex(ctx.contentKey) },
    witness: {
      seedLabel: witness.seedLabel,
      seedHex: hex(witness.seed),
      publicKeyHex: hex(witness.publicKey),
    },
  };
}

// ---- derivations.json ----

async function derivationsFile(ctx: Context): Promise<unknown> {
  const patientNumbers = [PATIENT_NUMBER, '0000000001', 'Zo\u00eb-42', 'Zoe\u0308-42', 'x'.repeat(128)];
  const staffIds = [STAFF_ID, 'dr.m\u00fcller'];
  const invalidIdentifiers = [' 123456789', '123456789 ', '', 'x'.repeat(129), '12\n34'];
  const tokenBytes = unb64(TOKEN);
  const binding = {
    bindingKeyVersion: 1,
    invitationId: INVITATION_ID,
    patientRef: ctx.patientRef,
    devicePublicKey: ctx.keys.device.publicKey,
    deviceId: deviceId(ctx),
  };
  const bindingNegatives = [
    { name: 'another patient', change: { patientRef: derivePatientRef(ctx.pseudonymKey, '987654321') } },
    {
      name: 'another device key',
      change: { devicePublicKey: ctx.keys.otherDevice.publicKey, deviceId: deviceId(ctx, 'otherDevice') },
    },
    { name: 'another binding key version', change: { bindingKeyVersion: 2 } },
    { name: 'deviceId is not the key fingerprint', change: { deviceId: deviceId(ctx, 'otherDevice') } },
    { name: 'another invitation', change: { invitationId: b64(counting(0x11, 16)) } },
  ];
  return {
    description: `Clinic Bridge derivations (PROTOCOL.md §3, §2.3): the connector's pseudonym and binding keys from its master secret, patientRef and operatorRef, fingerprints, the binding secret and proof, token digests and record-chunk contexts. All deterministic: an implementation must reproduce every value exactly. Negative cases name the stable error code of §12. ${CONVENTIONS}`,
    hospitalKeys: {
      formula: 'HMAC-SHA256(masterSecret, UTF-8(label) || uint16 BE version)',
      masterSecretHex: hex(ctx.masterSecret),
      keys: [
        { purpose: 'pseudonym', label: DERIVED_KEY_LABELS.pseudonym, version: 1 },
        { purpose: 'binding', label: DERIVED_KEY_LABELS.binding, version: 1 },
        { purpose: 'binding', label: DERIVED_KEY_LABELS.binding, version: 2 },
      ].map((key) => ({ ...key, keyHex: hex(derivedKeyBytes(ctx.masterSecret, key.label, key.version)) })),
    },
    patientRefs: {
      formula:
        'base64url(first 16 bytes of HMAC-SHA256(pseudonymKey, "cb/patient-ref/v2" || UTF-8(NFC(patientNumber))))',
      pseudonymKeyVersion: 1,
      valid: patientNumbers.map((patientNumber) => ({
        patientNumberUtf8: patientNumber,
        patientRef: derivePatientRef(ctx.pseudonymKey, patientNumber),
      })),
      invalid: await Promise.all(
        invalidIdentifiers.map(async (patientNumber) => ({
          patientNumberUtf8: patientNumber,
          expectedError: await errorCodeOf(() => derivePatientRef(ctx.pseudonymKey, patientNumber)),
        })),
      ),
    },
    operatorRefs: {
      formula:
        'base64url(first 16 bytes of HMAC-SHA256(pseudonymKey, "cb/operator-ref/v2" || UTF-8(NFC(staffId))))',
      pseudonymKeyVersion: 1,
      valid: staffIds.map((staffId) => ({
        staffIdUtf8: staffId,
        operatorRef: deriveOperatorRef(ctx.pseudonymKey, staffId),
      })),
    },
    fingerprints: KEY_NAMES.map((name) => ({
      key: name,
      publicKey: ctx.keys[name].publicKey,
      fingerprint: pub(ctx, name).fingerprint,
    })),
    tokens: [{ token: TOKEN, tokenSha256: tokenDigest(TOKEN), tokenHex: hex(tokenBytes) }],
    binding: {
      secretFormula: 'HMAC-SHA256(bindingKey, "cb/binding/v2" || invitationId || patientRef)',
      proofFormula:
        'HMAC-SHA256(bindingSecret, "cb/binding-proof/v1" || invitationId || deviceId || devicePublicKey bytes)',
      valid: {
        ...binding,
        bindingSecretHex: hex(ctx.bindingSecret),
        bindingProof: ctx.bindingProof,
      },
      bindingSecretOfVersion2Hex: hex(
        deriveBindingSecret(ctx.bindingKeyOf(2), INVITATION_ID, ctx.patientRef),
      ),
      invalid: await Promise.all(
        bindingNegatives.map(async ({ name, change }) => {
          const check = { ...binding, ...change, bindingProof: ctx.bindingProof };
          return {
            name,
            ...check,
            expectedError: await errorCodeOf(() =>
              verifyBindingProof({
                bindingKey: ctx.bindingKeyOf(check.bindingKeyVersion),
                invitationId: check.invitationId,
                patientRef: check.patientRef,
                deviceId: check.deviceId,
                devicePublicKey: importPublicKey(check.devicePublicKey),
                bindingProof: check.bindingProof,
              }),
            ),
          };
        }),
      ),
    },
    chunkContexts: [
      { index: 0, last: true },
      { index: 0, last: false },
      { index: 1, last: false },
      { index: 3, last: true },
      { index: 0x01020304, last: false },
    ].map(({ index, last }) => ({
      recordId: RECORD_ID,
      index,
      last,
      contextHex: hex(recordChunkContext(RECORD_ID, index, last)),
    })),
  };
}

// ---- signatures.json ----

interface DocumentVector {
  readonly name: string;
  readonly kind: DocumentKind;
  readonly signer: KeyName;
  readonly document: unknown;
  readonly message: Uint8Array;
  readonly sign: () => Uint8Array;
  readonly at?: string;
  readonly token?: string;
}

const CERT_ISSUED = '2026-01-05T09:31:07Z';
const CERT_EXPIRES = '2027-01-05T09:31:07Z';

function signatureDocuments(ctx: Context): DocumentVector[] {
  const certificate: DeviceCertificate = {
    type: DEVICE_CERTIFICATE_TYPE,
    deviceId: deviceId(ctx),
    devicePublicKey: ctx.keys.device.publicKey,
    hospitalId: HOSPITAL_ID,
    patientRef: ctx.patientRef,
    invitationId: INVITATION_ID,
    bindingProof: ctx.bindingProof,
    issuedAt: CERT_ISSUED,
    expiresAt: CERT_EXPIRES,
  };
  const pairRequest: PairRequest = {
    type: PAIR_REQUEST_TYPE,
    invitationId: INVITATION_ID,
    tokenSha256: tokenDigest(TOKEN),
    devicePublicKey: ctx.keys.device.publicKey,
    deviceId: deviceId(ctx),
    bindingProof: ctx.bindingProof,
    fcmToken: 'test-fcm-registration-token:conformance-vector',
    platform: 'ios',
    issuedAt: '2026-01-05T09:31:05Z',
  };
  const accepted: Receipt = {
    type: RECEIPT_TYPE,
    uploadId: UPLOAD_ID,
    hospitalId: HOSPITAL_ID,
    status: 'accepted',
    recordId: RECORD_ID,
    at: '2026-01-05T10:02:44Z',
  };
  const rejected: Receipt = {
    type: RECEIPT_TYPE,
    uploadId: b64(counting(0x01, 16)),
    hospitalId: HOSPITAL_ID,
    status: 'rejected',
    recordId: OTHER_RECORD_ID,
    errorCode: 'DIGEST_MISMATCH',
    at: '2026-01-05T10:05:00Z',
  };
  const erasure: DeletionReceipt = {
    type: DELETION_RECEIPT_TYPE,
    reason: 'erasure',
    jobId: `erasure-${deviceId(ctx)}`,
    hospitalId: HOSPITAL_ID,
    patientRef: ctx.patientRef,
    startedAt: '2026-02-01T12:00:00Z',
    finishedAt: '2026-02-01T12:00:03Z',
    complete: true,
    deleted: {
      records: [RECORD_ID],
      invitations: [INVITATION_ID],
      devices: [deviceId(ctx)],
      uploads: [],
      quarantined: [],
      orphans: [],
    },
  };
  const retention: DeletionReceipt = {
    type: DELETION_RECEIPT_TYPE,
    reason: 'retention',
    jobId: 'retention-2026-04-06T02:00:00Z',
    startedAt: '2026-04-06T02:00:00Z',
    finishedAt: '2026-04-06T02:00:41Z',
    complete: false,
    prunedAuditEvents: 3,
    deleted: {
      records: [OTHER_RECORD_ID],
      invitations: [],
      devices: [],
      uploads: [`hospitals/${HOSPITAL_ID}/uploads/${b64(counting(0x02, 16))}.cbr`],
      quarantined: [`hospitals/${HOSPITAL_ID}/uploads/${b64(counting(0x01, 16))}.cbr`],
      orphans: [],
    },
  };
  // A manifest as a signed document only (containers.json has one inside a real container):
  // its digest and wrapped key are fixed placeholders, so the document is deterministic.
  const manifest: UploadManifest = {
    type: UPLOAD_MANIFEST_TYPE,
    uploadId: b64(counting(0x03, 16)),
    recordId: b64(counting(0xa0, 16)),
    hospitalId: HOSPITAL_ID,
    patientRef: ctx.patientRef,
    createdAt: '2026-01-05T09:30:00Z',
    expiresAt: '2026-04-05T09:30:00Z',
    contentClass: 'fhir',
    chunkSize: 1_048_576,
    chunkCount: 2,
    plaintextLength: 1_048_600,
    ciphertextLength: 1_048_600 + 2 * 49,
    ciphertextSha256: b64(sha256(utf8('placeholder chunk section'))),
    wrapKey: ctx.keys.wrap.publicKey,
    operatorRef: ctx.operatorRef,
    recipients: [
      { deviceId: deviceId(ctx), wrappedKey: b64(counting(0x20, 177)) },
      { deviceId: deviceId(ctx, 'otherDevice'), wrappedKey: b64(counting(0x40, 177)) },
    ],
  };
  const text = 'Clinic Bridge conformance vector: Secure Message sign';
  const doc = (
    name: string,
    kind: DocumentKind,
    signer: KeyName,
    document: object,
    sign: (key: PrivateKey) => Uint8Array,
    extra: { at?: string; token?: string } = {},
  ): DocumentVector => ({
    name,
    kind,
    signer,
    document,
    message: utf8(canonicalJson(document)),
    sign: () => sign(priv(ctx, signer)),
    ...extra,
  });
  return [
    {
      name: 'secure message sign',
      kind: 'secureMessageSign',
      signer: 'hospital',
      document: text,
      message: utf8(text),
      sign: () => sign(utf8(text), priv(ctx, 'hospital')),
    },
    doc(
      'device certificate',
      'deviceCertificate',
      'pairing',
      certificate,
      (k) => signDeviceCertificate(certificate, k),
      {
        at: CERT_ISSUED,
      },
    ),
    doc('pair request', 'pairRequest', 'device', pairRequest, (k) => signPairRequest(pairRequest, k), {
      at: pairRequest.issuedAt,
      token: TOKEN,
    }),
    doc('upload manifest', 'uploadManifest', 'hospital', manifest, (k) => signManifest(manifest, k)),
    doc('accepted receipt', 'receipt', 'ingest', accepted, (k) => signReceipt(accepted, k)),
    doc('rejected receipt', 'receipt', 'ingest', rejected, (k) => signReceipt(rejected, k)),
    doc('erasure deletion receipt', 'deletionReceipt', 'records', erasure, (k) =>
      signDeletionReceipt(erasure, k),
    ),
    doc('retention deletion receipt', 'deletionReceipt', 'records', retention, (k) =>
      signDeletionReceipt(retention, k),
    ),
  ];
}

async function signaturesFile(ctx: Context): Promise<unknown> {
  const committed = ctx.previous.signatures;
  const docs = signatureDocuments(ctx);
  const valid = [];
  const signedOf = new Map<string, Uint8Array>();
  for (const d of docs) {
    const old = committedNamed(committedAt(committed, 'valid'), d.name);
    const signed = await keepOrMake(
      typeof old?.signed === 'string' ? (old.signed as string) : undefined,
      (text) => {
        const bytes = unb64(text);
        const accepted = verifyAs({
          kind: d.kind,
          signed: bytes,
          publicKey: pub(ctx, d.signer),
          ...(d.at ? { at: new Date(d.at) } : {}),
          ...(d.token ? { token: d.token } : {}),
        });
        return (
          canonicalJson(accepted) === canonicalJson(d.document) &&
          hex(signedParts(bytes).message) === hex(d.message)
        );
      },
      () => b64(d.sign()),
    );
    signedOf.set(d.name, unb64(signed));
    valid.push({
      name: d.name,
      kind: d.kind,
      signer: d.signer,
      ...(d.at ? { at: d.at } : {}),
      ...(d.token ? { token: d.token } : {}),
      document: d.document,
      messageUtf8: Buffer.from(d.message).toString('utf8'),
      signed,
    });
  }
  const of = (name: string): Uint8Array => signedOf.get(name)!;
  const certificate = of('device certificate');
  const { message: certMessage } = signedParts(certificate);
  const rejected = docs.find((d) => d.name === 'accepted receipt')!;
  const nonCanonical = utf8(canonicalJson(rejected.document).replace('{"at":', '{ "at":'));
  const pairRequest = docs.find((d) => d.name === 'pair request')!;

  const fixed = (
    name: string,
    kind: DocumentKind,
    signed: Uint8Array,
    verifyWith: KeyName,
    expectedError: string,
    extra: { at?: string; token?: string } = {},
  ) => ({
    name,
    kind,
    verifyWith,
    ...extra,
    signed: b64(signed),
    expectedError,
  });
  const randomised = async (
    name: string,
    kind: DocumentKind,
    message: Uint8Array,
    signer: KeyName,
    verifyWith: KeyName,
    expectedError: string,
    extra: { at?: string; token?: string } = {},
  ) => {
    const old = committedNamed(committedAt(committed, 'invalid'), name);
    const signed = await keepOrMake(
      typeof old?.signed === 'string' ? (old.signed as string) : undefined,
      (text) => hex(verify(unb64(text), pub(ctx, signer))) === hex(message),
      () => b64(sign(message, priv(ctx, signer))),
    );
    return { name, kind, verifyWith, signedBy: signer, ...extra, signed, expectedError };
  };
  const certAt = { at: CERT_ISSUED };
  const invalid = [
    fixed(
      'certificate with a flipped signature byte',
      'deviceCertificate',
      flipByte(certificate, 12 + certMessage.length + 8),
      'pairing',
      'CERTIFICATE_INVALID',
      certAt,
    ),
    fixed(
      'certificate with a flipped message byte',
      'deviceCertificate',
      flipByte(certificate, 12 + 40),
      'pairing',
      'CERTIFICATE_INVALID',
      certAt,
    ),
    fixed(
      'certificate verified with another key',
      'deviceCertificate',
      certificate,
      'hospital',
      'CERTIFICATE_INVALID',
      certAt,
    ),
    fixed(
      'certificate with a high-s signature',
      'deviceCertificate',
      highS(certificate),
      'pairing',
      'CERTIFICATE_INVALID',
      certAt,
    ),
    fixed(
      'certificate with a trailing byte',
      'deviceCertificate',
      Uint8Array.of(...certificate, 0),
      'pairing',
      'CERTIFICATE_INVALID',
      certAt,
    ),
    fixed(
      'certificate truncated by one byte',
      'deviceCertificate',
      certificate.subarray(0, -1),
      'pairing',
      'CERTIFICATE_INVALID',
      certAt,
    ),
    fixed('certificate at its expiry', 'deviceCertificate', certificate, 'pairing', 'CERTIFICATE_EXPIRED', {
      at: CERT_EXPIRES,
    }),
    fixed(
      'certificate more than 300 s before it was issued',
      'deviceCertificate',
      certificate,
      'pairing',
      'CERTIFICATE_INVALID',
      { at: '2026-01-05T09:26:06Z' },
    ),
    fixed(
      'receipt verified as a certificate',
      'deviceCertificate',
      of('accepted receipt'),
      'ingest',
      'CERTIFICATE_INVALID',
      certAt,
    ),
    fixed(
      'manifest verified with the pairing key',
      'uploadManifest',
      of('upload manifest'),
      'pairing',
      'MANIFEST_SIGNATURE_INVALID',
    ),
    fixed(
      'manifest with a high-s signature',
      'uploadManifest',
      highS(of('upload manifest')),
      'hospital',
      'MANIFEST_SIGNATURE_INVALID',
    ),
    fixed('certificate verified as a receipt', 'receipt', certificate, 'pairing', 'DOCUMENT_TYPE_MISMATCH'),
    fixed(
      'receipt with a flipped signature byte',
      'receipt',
      flipByte(of('accepted receipt'), -3),
      'ingest',
      'SIGNATURE_INVALID',
    ),
    fixed(
      'deletion receipt with a flipped message byte',
      'deletionReceipt',
      flipByte(of('erasure deletion receipt'), 30),
      'records',
      'SIGNATURE_INVALID',
    ),
    fixed('pair request with another token', 'pairRequest', of('pair request'), 'device', 'INVALID_REQUEST', {
      at: pairRequest.at!,
      token: b64(counting(0x41, 32)),
    }),
    fixed(
      'pair request 301 s after it was issued',
      'pairRequest',
      of('pair request'),
      'device',
      'REQUEST_EXPIRED',
      { at: '2026-01-05T09:36:06Z', token: TOKEN },
    ),
    fixed(
      'secure message verified with another key',
      'secureMessageSign',
      of('secure message sign'),
      'ingest',
      'SIGNATURE_INVALID',
    ),
    fixed(
      'secure message with another tag byte',
      'secureMessageSign',
      flipByte(of('secure message sign'), 0),
      'hospital',
      'SIGNATURE_INVALID',
    ),
    await randomised(
      'receipt signed as non-canonical JSON',
      'receipt',
      nonCanonical,
      'ingest',
      'ingest',
      'DOCUMENT_INVALID',
    ),
    await randomised(
      'pair request signed by a key other than the one it enrols',
      'pairRequest',
      pairRequest.message,
      'otherDevice',
      'device',
      'SIGNATURE_INVALID',
      { at: pairRequest.at!, token: TOKEN },
    ),
  ];
  for (const entry of invalid) {
    const code = await errorCodeOf(() =>
      verifyAs({
        kind: entry.kind,
        signed: unb64(entry.signed),
        publicKey: pub(ctx, entry.verifyWith),
        ...(entry.at ? { at: new Date(entry.at) } : {}),
        ...(entry.token ? { token: entry.token } : {}),
      }),
    );
    if (code !== entry.expectedError)
      throw new Error(`signatures "${entry.name}": ${code} instead of ${entry.expectedError}`);
  }
  return {
    description: `Clinic Bridge signatures (PROTOCOL.md §2.5, §5): Themis Secure Message sign over canonical JSON documents. ECDSA is randomised, so \`signed\` is one valid signature, not the only one: verify it (SecureMessage verify with the signer's public key, then the checks of §5), and check that what you sign verifies with the library; \`messageUtf8\` (the canonical JSON) is deterministic and must match exactly. \`at\` is the verifier's clock, \`token\` the pair request's token. Every \`invalid\` entry must be refused with \`expectedError\` (§12) when verified as \`kind\` with \`verifyWith\`'s key. ${CONVENTIONS}`,
    valid,
    invalid,
  };
}

// ---- Secure Message and the key-wrap payload, spelled out (PROTOCOL.md §2.4) ----

// Kept here under their old names for the conformance test; they live in common.ts.
export { keyWrapPayload, secureMessageDecrypt, secureMessageEncrypt };

const uint32le = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];

/** The Secure Cell Seal message key of PROTOCOL.md §2.3 (the Soter KDF Themis uses). */
export function sealMessageKey(key: Uint8Array, messageLength: number, context: Uint8Array): Uint8Array {
  return hmac(
    key,
    Uint8Array.of(0, 0, 0, 1),
    utf8('Themis secure cell message key'),
    Uint8Array.of(0),
    Uint8Array.from(uint32le(messageLength)),
    context,
  );
}

async function collect(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return concat(...parts);
}

// ---- key-wraps.json ----

async function keyWrapsFile(ctx: Context): Promise<unknown> {
  const committed = ctx.previous['key-wraps'];
  const wrapKey = pub(ctx, 'wrap');
  const device = pub(ctx, 'device');
  const payload = keyWrapPayload(wrapKey, device, RECORD_ID, ctx.contentKey);
  const unwrapsTo = (wrapped: Uint8Array, expected: Uint8Array): boolean =>
    hex(secureMessageDecrypt(priv(ctx, 'device'), wrapKey, wrapped)) === hex(expected);
  // A Secure Message wrapping of `expected` for the device: the committed one while it still
  // decrypts to exactly `expected`, else a fresh one.
  const randomised = async (committedValue: unknown, expected: Uint8Array): Promise<string> =>
    keepOrMake(
      typeof committedValue === 'string' ? committedValue : undefined,
      (text) => unwrapsTo(unb64(text), expected),
      () => b64(secureMessageEncrypt(priv(ctx, 'wrap'), device, expected)),
    );
  const wrappedKey = await randomised(committedAt(committed, 'valid', 'wrappedKey'), payload);
  const versionOne = keyWrapPayload(wrapKey, device, RECORD_ID, ctx.contentKey, 1);
  const otherDevicePayload = keyWrapPayload(wrapKey, pub(ctx, 'otherDevice'), RECORD_ID, ctx.contentKey);
  const at = (name: string): unknown =>
    committedAt(committedNamed(committedAt(committed, 'invalid'), name), 'wrappedKey');
  const negative = (
    name: string,
    wrapped: string,
    unwrapWith: { device: KeyName; wrapKey: KeyName; recordId: string },
    expectedError: string,
    payloadHex?: string,
  ) => ({ name, wrappedKey: wrapped, unwrapWith, ...(payloadHex ? { payloadHex } : {}), expectedError });
  const as = { device: 'device' as KeyName, wrapKey: 'wrap' as KeyName, recordId: RECORD_ID };
  const invalid = [
    negative(
      'unwrapped by another device',
      wrappedKey,
      { ...as, device: 'otherDevice' as KeyName },
      'KEY_UNWRAP_FAILED',
    ),
    negative(
      'unwrapped with another wrap key',
      wrappedKey,
      { ...as, wrapKey: 'hospital' },
      'KEY_UNWRAP_FAILED',
    ),
    negative(
      'unwrapped for another record',
      wrappedKey,
      { ...as, recordId: OTHER_RECORD_ID },
      'KEY_BINDING_MISMATCH',
    ),
    negative('truncated by one byte', b64(unb64(wrappedKey).subarray(0, -1)), as, 'KEY_UNWRAP_FAILED'),
    negative('a flipped byte', b64(flipByte(unb64(wrappedKey), -5)), as, 'KEY_UNWRAP_FAILED'),
    negative(
      'payload version 0x01',
      await randomised(at('payload version 0x01'), versionOne),
      as,
      'KEY_UNWRAP_FAILED',
      hex(versionOne),
    ),
    negative(
      "payload naming another device's key",
      await randomised(at("payload naming another device's key"), otherDevicePayload),
      as,
      'KEY_BINDING_MISMATCH',
      hex(otherDevicePayload),
    ),
  ];
  for (const entry of invalid) {
    const code = await errorCodeOf(() =>
      unwrapContentKey(unb64(entry.wrappedKey), {
        recordId: entry.unwrapWith.recordId,
        device: ctx.keys[entry.unwrapWith.device].pair,
        wrapKey: pub(ctx, entry.unwrapWith.wrapKey),
      }),
    );
    if (code !== entry.expectedError) {
      throw new Error(`key-wraps "${entry.name}": ${code} instead of ${entry.expectedError}`);
    }
  }
  return {
    description: `Clinic Bridge key wraps (PROTOCOL.md §2.4): a record's content key wrapped for one device with Themis Secure Message encrypt under the upload's wrap key. The payload is deterministic and must match exactly; Secure Message is randomised, so \`wrappedKey\` is one valid wrapping: decrypt it with SecureMessage(device private key, wrap public key) and compare the payload, and check that your own wrapping opens with the library. Every \`invalid\` entry must be refused with \`expectedError\` (§12) when unwrapped as \`unwrapWith\` says (including the payload checks after decryption). ${CONVENTIONS}`,
    valid: {
      recordId: RECORD_ID,
      wrapKey: 'wrap',
      device: 'device',
      contentKeyHex: hex(ctx.contentKey),
      payload: {
        magicUtf8: 'CBKW',
        version: 2,
        wrapKeySha256Hex: hex(sha256(wrapKey.toBytes())),
        deviceKeySha256Hex: hex(sha256(device.toBytes())),
        recordIdLength: utf8(RECORD_ID).length,
      },
      payloadHex: hex(payload),
      wrappedKey,
      wrappedKeyLength: unb64(wrappedKey).length,
    },
    invalid,
  };
}

// ---- containers.json ----

const CHUNK_SIZE = 64;
const CONTAINER_FILE =
  'TEST VECTOR, not a patient record. Clinic Bridge conformance container: one record in four chunks.';
const CONTAINER_HEADER: RecordHeader = {
  filename: 'conformance-letter.txt',
  mediaType: 'text/plain',
  size: utf8(CONTAINER_FILE).length,
  title: 'Conformance vector',
  documentDate: '2026-01-05T09:00:00Z',
};

interface OpenAs {
  readonly device: KeyName;
  readonly hospitalKey: KeyName;
  readonly hospitalId: string;
  readonly recordId: string;
}

/** Opens a container as a device would (openRecord), reading the file to its end. */
export async function openContainerAs(keys: TestKeys, bytes: Uint8Array, as: OpenAs) {
  const opened = await openRecord([bytes], {
    device: keys[as.device].pair,
    hospitalPublicKey: keys[as.hospitalKey].pair.publicKey,
    hospitalId: as.hospitalId,
    recordId: as.recordId,
  });
  return { manifest: opened.manifest, header: opened.header, file: await collect(opened.file) };
}

async function containersFile(ctx: Context): Promise<unknown> {
  const committed = ctx.previous.containers;
  const file = utf8(CONTAINER_FILE);
  const plaintext = await collect(encodeRecordPayload(CONTAINER_HEADER, [file]));
  const key = contentKeyFromBytes(ctx.contentKey);
  const expected: Omit<UploadManifest, 'ciphertextSha256' | 'recipients'> = {
    type: UPLOAD_MANIFEST_TYPE,
    uploadId: UPLOAD_ID,
    recordId: RECORD_ID,
    hospitalId: HOSPITAL_ID,
    patientRef: ctx.patientRef,
    createdAt: '2026-01-05T10:02:40Z',
    expiresAt: '2026-04-05T10:02:40Z',
    contentClass: 'document',
    chunkSize: CHUNK_SIZE,
    chunkCount: Math.ceil(plaintext.length / CHUNK_SIZE),
    plaintextLength: plaintext.length,
    ciphertextLength: plaintext.length + Math.ceil(plaintext.length / CHUNK_SIZE) * 49,
    wrapKey: ctx.keys.wrap.publicKey,
    operatorRef: ctx.operatorRef,
  };
  const payload = keyWrapPayload(pub(ctx, 'wrap'), pub(ctx, 'device'), RECORD_ID, ctx.contentKey);
  const as: OpenAs = {
    device: 'device',
    hospitalKey: 'hospital',
    hospitalId: HOSPITAL_ID,
    recordId: RECORD_ID,
  };

  const containerHex = await keepOrMake(
    committedAt(committed, 'valid', 'containerHex') as string | undefined,
    async (text) => {
      const bytes = unhex(text);
      const opened = await openContainerAs(ctx.keys, bytes, as);
      const { ciphertextSha256: _digest, recipients, ...rest } = opened.manifest;
      const read = await readUploadContainer([bytes]);
      const chunks: Uint8Array[] = [];
      for await (const chunk of read.chunks()) chunks.push(chunk);
      return (
        canonicalJson(rest) === canonicalJson(expected) &&
        recipients.length === 1 &&
        recipients[0]!.deviceId === deviceId(ctx) &&
        hex(secureMessageDecrypt(priv(ctx, 'device'), pub(ctx, 'wrap'), unb64(recipients[0]!.wrappedKey))) ===
          hex(payload) &&
        canonicalJson(opened.header) === canonicalJson(CONTAINER_HEADER) &&
        hex(opened.file) === hex(file) &&
        hex(decryptRecord(chunks, { key, recordId: RECORD_ID })) === hex(plaintext)
      );
    },
    async () => {
      const section = new ChunkSectionWriter();
      const framed = encryptRecord(plaintext, { key, recordId: RECORD_ID, chunkSize: CHUNK_SIZE }).flatMap(
        (c) => section.frame(c),
      );
      const summary = section.finish();
      const manifest: UploadManifest = {
        ...expected,
        ciphertextSha256: summary.ciphertextSha256,
        recipients: [
          {
            deviceId: deviceId(ctx),
            wrappedKey: b64(secureMessageEncrypt(priv(ctx, 'wrap'), pub(ctx, 'device'), payload)),
          },
        ],
      };
      const signed = signManifest(manifest, priv(ctx, 'hospital'));
      return hex(await collect(writeUploadContainer(signed, framed)));
    },
  );
  const bytes = unhex(containerHex);
  const read = await readUploadContainer([bytes]);
  const sealed: Uint8Array[] = [];
  for await (const chunk of read.chunks()) sealed.push(chunk);
  const manifestLength = read.signedManifest.length;
  const chunks = sealed.map((chunk, index) => {
    const last = index === sealed.length - 1;
    const data = plaintext.subarray(index * CHUNK_SIZE, Math.min(plaintext.length, (index + 1) * CHUNK_SIZE));
    const contextBytes = recordChunkContext(RECORD_ID, index, last);
    return {
      index,
      last,
      contextHex: hex(contextBytes),
      dataHex: hex(data),
      sealedMessageHex: hex(concat([0], data)),
      messageKeyHex: hex(sealMessageKey(ctx.contentKey, data.length + 1, contextBytes)),
      ivHex: hex(chunk.subarray(16, 28)),
      tagHex: hex(chunk.subarray(28, 44)),
      sealedHex: hex(chunk),
    };
  });

  const change = (edit: (copy: Uint8Array) => Uint8Array) => hex(edit(bytes.slice()));
  const lastChunkStart = bytes.length - sealed[sealed.length - 1]!.length;
  const invalid = [
    {
      name: 'truncated: the last 10 bytes missing',
      containerHex: change((c) => c.subarray(0, -10)),
      expectedError: 'UPLOAD_TRUNCATED',
    },
    {
      name: 'a byte after the end',
      containerHex: change((c) => concat(c, [0])),
      expectedError: 'UPLOAD_TRAILING_DATA',
    },
    { name: 'another magic', containerHex: change((c) => flipByte(c, 0)), expectedError: 'UPLOAD_MALFORMED' },
    {
      name: 'container version 2',
      containerHex: change((c) => ((c[4] = 2), c)),
      expectedError: 'UPLOAD_VERSION_UNSUPPORTED',
    },
    {
      name: 'a flipped byte in the last chunk',
      containerHex: change((c) => flipByte(c, -1)),
      expectedError: 'DIGEST_MISMATCH',
    },
    {
      name: "a flipped byte in the manifest's signature",
      containerHex: change((c) => flipByte(c, 9 + manifestLength - 5)),
      expectedError: 'MANIFEST_SIGNATURE_INVALID',
    },
    {
      name: 'a wrong frame length',
      containerHex: change((c) => flipByte(c, lastChunkStart - 1)),
      expectedError: 'UPLOAD_MALFORMED',
    },
    {
      name: 'opened with another hospital key',
      containerHex: containerHex,
      openAs: { ...as, hospitalKey: 'pairing' as KeyName },
      expectedError: 'MANIFEST_SIGNATURE_INVALID',
    },
    {
      name: 'opened by a device that is not a recipient',
      containerHex: containerHex,
      openAs: { ...as, device: 'otherDevice' as KeyName },
      expectedError: 'NOT_A_RECIPIENT',
    },
    {
      name: 'opened as another record',
      containerHex: containerHex,
      openAs: { ...as, recordId: OTHER_RECORD_ID },
      expectedError: 'MANIFEST_INVALID',
    },
    {
      name: 'opened for another hospital',
      containerHex: containerHex,
      openAs: { ...as, hospitalId: 'st-other-zh' },
      expectedError: 'MANIFEST_INVALID',
    },
  ].map((entry) => ({
    name: entry.name,
    openAs: entry.openAs ?? as,
    containerHex: entry.containerHex,
    expectedError: entry.expectedError,
  }));
  for (const entry of invalid) {
    const code = await errorCodeOf(() => openContainerAs(ctx.keys, unhex(entry.containerHex), entry.openAs));
    if (code !== entry.expectedError)
      throw new Error(`containers "${entry.name}": ${code} instead of ${entry.expectedError}`);
  }
  const chunkSequences = [
    { name: 'chunks 0 and 1 swapped', chunks: [1, 0, 2, 3], expectedError: 'CHUNK_INVALID' },
    { name: 'the last chunk dropped', chunks: [0, 1, 2], expectedError: 'RECORD_TRUNCATED' },
    { name: 'the last chunk repeated', chunks: [0, 1, 2, 3, 3], expectedError: 'RECORD_TRAILING_DATA' },
    { name: 'only the first chunk', chunks: [0], expectedError: 'RECORD_TRUNCATED' },
    { name: 'no chunk', chunks: [], expectedError: 'RECORD_TRUNCATED' },
    {
      name: 'opened as another record',
      chunks: [0, 1, 2, 3],
      recordId: OTHER_RECORD_ID,
      expectedError: 'CHUNK_INVALID',
    },
  ].map((entry) => ({
    name: entry.name,
    recordId: entry.recordId ?? RECORD_ID,
    chunks: entry.chunks,
    expectedError: entry.expectedError,
  }));
  for (const entry of chunkSequences) {
    const code = await errorCodeOf(() =>
      decryptRecord(
        entry.chunks.map((i) => sealed[i]!),
        { key, recordId: entry.recordId },
      ),
    );
    if (code !== entry.expectedError) {
      throw new Error(`chunk sequence "${entry.name}": ${code} instead of ${entry.expectedError}`);
    }
  }

  const cells = [];
  for (const [name, message, contextBytes] of [
    [
      'with a context',
      utf8('Secure Cell Seal, conformance vector'),
      utf8('clinic-bridge conformance context'),
    ],
    ['without a context', utf8('Secure Cell Seal, no context'), new Uint8Array(0)],
  ] as const) {
    const old = committedNamed(committedAt(committed, 'secureCells'), name);
    const sealedHex = await keepOrMake(
      typeof old?.sealedHex === 'string' ? (old.sealedHex as string) : undefined,
      (text) =>
        hex(openCell(ctx.contentKey, unhex(text), contextBytes) ?? new Uint8Array(0)) === hex(message),
      () => hex(sealCell(ctx.contentKey, message, contextBytes)),
    );
    const cell = unhex(sealedHex);
    cells.push({
      name,
      keyHex: hex(ctx.contentKey),
      messageUtf8: Buffer.from(message).toString('utf8'),
      contextHex: hex(contextBytes),
      messageKeyHex: hex(sealMessageKey(ctx.contentKey, message.length, contextBytes)),
      ivHex: hex(cell.subarray(16, 28)),
      tagHex: hex(cell.subarray(28, 44)),
      sealedHex,
    });
  }

  return {
    description: `Clinic Bridge upload containers (PROTOCOL.md §2.3, §6, §7): one small record sealed for the device key, as a phone downloads it, with every step spelled out. Deterministic and exact: the record plaintext (§6), chunk data, contexts and Seal message keys, the manifest's fields other than ciphertextSha256 and recipients. Randomised (Secure Cell IVs, Secure Message, the manifest signature), so verify rather than compare: open \`containerHex\` as \`valid.openAs\` says and expect \`opened\`; open each chunk with SecureCellSeal(contentKey).decrypt(sealedHex, context) and expect sealedMessageHex (0x00 then the data). \`secureCells\` are single Secure Cell Seal vectors (also openable with the Seal layout and messageKeyHex over AES-256-GCM). Every \`invalid\` container must be refused with \`expectedError\` (§12) when opened as its \`openAs\` says; every \`invalidChunkSequences\` entry lists chunks by index, to be opened in that order with the content key and refused with \`expectedError\`. ${CONVENTIONS}`,
    valid: {
      openAs: as,
      contentKeyHex: hex(ctx.contentKey),
      header: CONTAINER_HEADER,
      headerJsonUtf8: canonicalJson(CONTAINER_HEADER),
      fileUtf8: CONTAINER_FILE,
      plaintextHex: hex(plaintext),
      manifest: read.manifest,
      signedManifest: b64(read.signedManifest),
      keyWrapPayloadHex: hex(payload),
      chunks,
      containerHex,
      containerLength: bytes.length,
      opened: { header: CONTAINER_HEADER, fileUtf8: CONTAINER_FILE },
    },
    invalid,
    invalidChunkSequences: chunkSequences,
    secureCells: cells,
  };
}

// ---- requests.json ----

interface RequestCase {
  readonly name: string;
  readonly signer: KeyName;
  readonly kind: KeyKind;
  readonly audience: string;
  readonly method: string;
  readonly target: string;
  readonly bodyUtf8: string;
  readonly timestamp: number;
  readonly nonceHex: string;
}

/** The library's verification of a vector request; resolves keys registered by name. */
export async function verifyVectorRequest(
  keys: TestKeys,
  request: {
    audience: string;
    method: string;
    target: string;
    bodyUtf8: string;
    headers: Record<string, string>;
    now: number;
    accept: readonly KeyKind[];
    registered: readonly KeyName[];
    seenNonce?: boolean;
  },
) {
  return verifyRequest({
    audience: request.audience,
    method: request.method,
    target: request.target,
    body: utf8(request.bodyUtf8),
    headers: request.headers,
    accept: request.accept,
    clock: { now: () => new Date(request.now * 1000) },
    resolveKey: async (keyId) =>
      request.registered
        .map((name) => keys[name].pair.publicKey)
        .find((key) => key.fingerprint === keyId.fingerprint),
    rememberNonce: async () => request.seenNonce !== true,
  });
}

async function requestsFile(ctx: Context): Promise<unknown> {
  const committed = ctx.previous.requests;
  const cases: RequestCase[] = [
    {
      name: 'device acknowledges a record',
      signer: 'device',
      kind: 'device',
      audience: API_BASE,
      method: 'POST',
      target: `/records/v1/records/${RECORD_ID}/ack`,
      bodyUtf8: '{"outcome":"stored"}',
      timestamp: 1_767_225_600,
      nonceHex: hex(counting(0xa0, 16)),
    },
    {
      name: 'device lists its records (no body, a query)',
      signer: 'device',
      kind: 'device',
      audience: API_BASE,
      method: 'GET',
      target: '/records/v1/records?pageSize=20',
      bodyUtf8: '',
      timestamp: 1_767_225_660,
      nonceHex: hex(counting(0xb0, 16)),
    },
    {
      name: 'hospital creates an invitation (apiBase with a path)',
      signer: 'hospital',
      kind: 'hospital',
      audience: `${API_BASE}/cb`,
      method: 'POST',
      target: '/pairing/v1/invitations',
      bodyUtf8: canonicalJson({
        invitationId: INVITATION_ID,
        patientRef: ctx.patientRef,
        tokenSha256: tokenDigest(TOKEN),
        expiresAt: '2026-01-06T09:30:00Z',
        maxAttempts: 3,
        operatorRef: ctx.operatorRef,
      }),
      timestamp: 1_767_605_400,
      nonceHex: hex(counting(0xc0, 16)),
    },
  ];
  const valid = [];
  for (const c of cases) {
    const keyId =
      c.kind === 'device'
        ? deviceKeyId(deviceId(ctx, c.signer))
        : hospitalKeyId(HOSPITAL_ID, pub(ctx, c.signer));
    const nonce = b64(unhex(c.nonceHex));
    const bodySha256 = bodyDigest(utf8(c.bodyUtf8));
    const stringToSign = requestSigningString({
      audience: c.audience,
      method: c.method,
      target: c.target,
      bodySha256,
      timestamp: String(c.timestamp),
      nonce,
      keyId,
    });
    const old = committedNamed(committedAt(committed, 'valid'), c.name);
    const oldSignature = committedAt(old, 'headers', 'CB-Signature');
    const signature = await keepOrMake(
      typeof oldSignature === 'string' ? oldSignature : undefined,
      (text) => Buffer.from(verify(unb64(text), pub(ctx, c.signer))).toString('utf8') === stringToSign,
      () =>
        signRequest({
          audience: c.audience,
          method: c.method,
          target: c.target,
          body: utf8(c.bodyUtf8),
          keyId,
          privateKey: priv(ctx, c.signer),
          now: new Date(c.timestamp * 1000),
          nonce,
        })['CB-Signature']!,
    );
    const headers = {
      'CB-Key-Id': keyId,
      'CB-Timestamp': String(c.timestamp),
      'CB-Nonce': nonce,
      'CB-Signature': signature,
    };
    await verifyVectorRequest(ctx.keys, {
      ...c,
      headers,
      now: c.timestamp,
      accept: [c.kind],
      registered: [c.signer],
    });
    valid.push({
      name: c.name,
      signer: c.signer,
      audience: c.audience,
      method: c.method,
      target: c.target,
      bodyUtf8: c.bodyUtf8,
      bodySha256,
      stringToSignUtf8: stringToSign,
      headers,
    });
  }

  const base = valid[0]!;
  const request = {
    audience: base.audience,
    method: base.method,
    target: base.target,
    bodyUtf8: base.bodyUtf8,
    headers: base.headers,
    now: Number(base.headers['CB-Timestamp']),
    accept: ['device'] as KeyKind[],
    registered: ['device'] as KeyName[],
  };
  const without = (name: string): Record<string, string> =>
    Object.fromEntries(Object.entries(base.headers).filter(([key]) => key !== name));
  const signatureBytes = unb64(base.headers['CB-Signature']);
  const oldOther = committedAt(
    committedNamed(committedAt(committed, 'invalid'), 'signed by another key'),
    'headers',
    'CB-Signature',
  );
  const otherSignature = await keepOrMake(
    typeof oldOther === 'string' ? oldOther : undefined,
    (text) =>
      Buffer.from(verify(unb64(text), pub(ctx, 'otherDevice'))).toString('utf8') === base.stringToSignUtf8,
    () => b64(sign(utf8(base.stringToSignUtf8), priv(ctx, 'otherDevice'))),
  );
  const invalid = [
    { name: 'no signature headers', change: { headers: {} }, expectedError: 'SIGNATURE_MISSING' },
    { name: 'no CB-Nonce', change: { headers: without('CB-Nonce') }, expectedError: 'SIGNATURE_MALFORMED' },
    {
      name: 'a timestamp with a leading zero',
      change: { headers: { ...base.headers, 'CB-Timestamp': `0${base.headers['CB-Timestamp']}` } },
      expectedError: 'SIGNATURE_MALFORMED',
    },
    {
      name: 'a nonce of 15 bytes',
      change: { headers: { ...base.headers, 'CB-Nonce': b64(counting(0xa0, 15)) } },
      expectedError: 'SIGNATURE_MALFORMED',
    },
    {
      name: 'an endpoint for hospital keys only',
      change: { accept: ['hospital'] as KeyKind[] },
      expectedError: 'UNKNOWN_KEY',
    },
    {
      name: '301 s after it was signed',
      change: { now: request.now + 301 },
      expectedError: 'REQUEST_EXPIRED',
    },
    {
      name: '301 s before it was signed',
      change: { now: request.now - 301 },
      expectedError: 'REQUEST_EXPIRED',
    },
    {
      name: 'sent to another deployment',
      change: { audience: 'https://staging.clinic-bridge.example' },
      expectedError: 'SIGNATURE_INVALID',
    },
    {
      name: 'another body',
      change: { bodyUtf8: '{"outcome":"failed"}' },
      expectedError: 'SIGNATURE_INVALID',
    },
    {
      name: 'another target',
      change: { target: `/records/v1/records/${OTHER_RECORD_ID}/ack` },
      expectedError: 'SIGNATURE_INVALID',
    },
    { name: 'another method', change: { method: 'PUT' }, expectedError: 'SIGNATURE_INVALID' },
    {
      name: 'a key that is not registered',
      change: { registered: [] as KeyName[] },
      expectedError: 'UNKNOWN_KEY',
    },
    {
      name: 'a flipped signature byte',
      change: { headers: { ...base.headers, 'CB-Signature': b64(flipByte(signatureBytes, -3)) } },
      expectedError: 'SIGNATURE_INVALID',
    },
    {
      name: 'a high-s signature',
      change: { headers: { ...base.headers, 'CB-Signature': b64(highS(signatureBytes)) } },
      expectedError: 'SIGNATURE_INVALID',
    },
    {
      name: 'signed by another key',
      change: { headers: { ...base.headers, 'CB-Signature': otherSignature } },
      expectedError: 'SIGNATURE_INVALID',
    },
    { name: 'a nonce seen before', change: { seenNonce: true }, expectedError: 'REQUEST_REPLAYED' },
  ].map(({ name, change, expectedError }) => ({
    name,
    ...request,
    seenNonce: false,
    ...change,
    expectedError,
  }));
  for (const entry of invalid) {
    const code = await errorCodeOf(() => verifyVectorRequest(ctx.keys, entry));
    if (code !== entry.expectedError)
      throw new Error(`requests "${entry.name}": ${code} instead of ${entry.expectedError}`);
  }
  return {
    description: `Clinic Bridge request signatures (PROTOCOL.md §8). The body digest and the string to sign are deterministic and must match exactly; \`CB-Signature\` is base64url of a Themis Secure Message sign, randomised, so verify it with the signer's public key (the message inside must be the string to sign) and check that yours verifies with the library. Each \`invalid\` request, verified at Unix time \`now\` by an endpoint accepting key kinds \`accept\` with keys \`registered\` (and, when \`seenNonce\`, a nonce store that has seen its nonce), must be refused with \`expectedError\` (§12). ${CONVENTIONS}`,
    valid,
    invalid,
  };
}

// ---- qr.json ----

interface QrFields {
  readonly apiBase: string;
  readonly hospitalId: string;
  readonly invitationId: string;
  readonly token: string;
  readonly bindingSecretHex: string;
  readonly hospitalPublicKey: string;
  readonly witnessKeyHex: string;
}

/** The QR payload of §4 from its table, not by the library: lets negatives break one field. */
function qrPayload(f: QrFields, options: { keyBytes?: Uint8Array } = {}): Uint8Array {
  const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
  return concat(
    [f.apiBase.length],
    ascii(f.apiBase),
    [f.hospitalId.length],
    ascii(f.hospitalId),
    unb64(f.invitationId),
    unb64(f.token),
    unhex(f.bindingSecretHex),
    options.keyBytes ?? unb64(f.hospitalPublicKey),
    unhex(f.witnessKeyHex),
  );
}

function qrFile(ctx: Context): unknown {
  const witness = witnessKey();
  const fields: QrFields = {
    apiBase: API_BASE,
    hospitalId: HOSPITAL_ID,
    invitationId: INVITATION_ID,
    token: TOKEN,
    bindingSecretHex: hex(ctx.bindingSecret),
    hospitalPublicKey: ctx.keys.hospital.publicKey,
    witnessKeyHex: hex(witness.publicKey),
  };
  const local: QrFields = { ...fields, apiBase: 'http://127.0.0.1:8470/cb', hospitalId: 'test-hospital-1' };
  const encode = (f: QrFields) =>
    encodeInvitationQr({
      apiBase: f.apiBase,
      hospitalId: f.hospitalId,
      invitationId: f.invitationId,
      token: f.token,
      bindingSecret: unhex(f.bindingSecretHex),
      hospitalPublicKey: importPublicKey(f.hospitalPublicKey),
      witnessKey: unhex(f.witnessKeyHex),
    });
  const valid = [
    { name: 'hospital deployment', fields },
    { name: 'local stack (http only to 127.0.0.1)', fields: local },
  ].map(({ name, fields: f }) => {
    const text = encode(f);
    if (text !== `CB1:${b64(qrPayload(f))}`) throw new Error('the QR encoder disagrees with §4');
    return { name, fields: f, payloadHex: hex(qrPayload(f)), text, textLength: text.length };
  });
  const payload = qrPayload(fields);
  const body = b64(payload);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const lastBits = alphabet[alphabet.indexOf(body.at(-1)!) | 1]!;
  const invalidTexts = [
    { name: 'a later version', text: `CB2:${body}`, expectedError: 'QR_VERSION_UNSUPPORTED' },
    { name: 'a lower-case prefix', text: `cb1:${body}`, expectedError: 'QR_MALFORMED' },
    {
      name: 'wrapped in a URL',
      text: `https://clinic-bridge.example/pair?CB1:${body}`,
      expectedError: 'QR_MALFORMED',
    },
    { name: 'base64 padding', text: `CB1:${body}==`, expectedError: 'QR_MALFORMED' },
    {
      name: 'standard base64 alphabet',
      text: `CB1:${body.replaceAll('-', '+').replaceAll('_', '/')}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'non-canonical last character',
      text: `CB1:${body.slice(0, -1)}${lastBits}`,
      expectedError: 'QR_MALFORMED',
    },
    { name: 'a trailing byte', text: `CB1:${b64(concat(payload, [0]))}`, expectedError: 'QR_MALFORMED' },
    {
      name: 'truncated by one byte',
      text: `CB1:${b64(payload.subarray(0, -1))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'http to a public host',
      text: `CB1:${b64(qrPayload({ ...fields, apiBase: 'http://api.clinic-bridge.example' }))}`,
      expectedError: 'QR_API_BASE_INVALID',
    },
    {
      name: 'an apiBase with a trailing slash',
      text: `CB1:${b64(qrPayload({ ...fields, apiBase: `${API_BASE}/` }))}`,
      expectedError: 'QR_API_BASE_INVALID',
    },
    {
      name: 'an apiBase with upper-case host',
      text: `CB1:${b64(qrPayload({ ...fields, apiBase: 'https://API.clinic-bridge.example' }))}`,
      expectedError: 'QR_API_BASE_INVALID',
    },
    {
      name: 'an apiBase with a query',
      text: `CB1:${b64(qrPayload({ ...fields, apiBase: `${API_BASE}?a=1` }))}`,
      expectedError: 'QR_API_BASE_INVALID',
    },
    {
      name: 'an upper-case hospitalId',
      text: `CB1:${b64(qrPayload({ ...fields, hospitalId: 'St-Example-ZH' }))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'a hospitalId of 2 characters',
      text: `CB1:${b64(qrPayload({ ...fields, hospitalId: 'st' }))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'a private key where the hospital key belongs',
      text: `CB1:${b64(qrPayload(fields, { keyBytes: unb64(ctx.keys.hospital.privateKey) }))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'a hospital key with a flipped point byte',
      text: `CB1:${b64(qrPayload(fields, { keyBytes: flipByte(unb64(fields.hospitalPublicKey), 20) }))}`,
      expectedError: 'QR_MALFORMED',
    },
  ].map((entry) => {
    let code: string | undefined;
    try {
      decodeInvitationQr(entry.text);
    } catch (error) {
      code = (error as { code?: string }).code;
    }
    if (code !== entry.expectedError)
      throw new Error(`qr "${entry.name}": ${code} instead of ${entry.expectedError}`);
    return entry;
  });
  const apiBases = [
    API_BASE,
    `${API_BASE}/cb`,
    'https://api.clinic-bridge.example:8443/cb/v',
    'http://127.0.0.1:8470',
    'https://API.Clinic-Bridge.example',
    'https://api.clinic-bridge.example:443',
    'https://api.clinic-bridge.example/',
    'https://api.clinic-bridge.example/cb/',
    'https://api.clinic-bridge.example//cb',
    'http://api.clinic-bridge.example',
    'http://localhost:8470',
    'https://user@api.clinic-bridge.example',
    'https://api.clinic-bridge.example?x=1',
    'https://api.clinic-bridge.example#top',
    'ftp://api.clinic-bridge.example',
  ].map((input) => {
    const canonical = canonicalApiBase(input) ?? null;
    return { input, canonical, acceptedInQr: canonical === input };
  });
  return {
    description: `Clinic Bridge invitation QR codes (PROTOCOL.md §4). Encoding is deterministic: \`fields\` must encode to \`text\` exactly (payloadHex is the decoded bytes), and \`text\` must decode to \`fields\`. Every \`invalid\` text must be refused with \`expectedError\` (§12). \`apiBases\` shows which apiBase a QR code may carry: only one that is already canonical (\`acceptedInQr\`); \`canonical\` is what the reference canonicaliser makes of the input (null: not allowed at all). ${CONVENTIONS}`,
    valid,
    invalid: invalidTexts,
    apiBases,
  };
}

// ---- All files ----

export async function generateVectors(previous: Partial<VectorSet> = {}): Promise<VectorSet> {
  const ctx = context(previous);
  const signatures = await signaturesFile(ctx);
  const linkerCertificate = committedNamed(committedAt(signatures, 'valid'), 'device certificate')!.signed;
  return {
    keys: keysFile(ctx),
    derivations: await derivationsFile(ctx),
    signatures,
    containers: await containersFile(ctx),
    'key-wraps': await keyWrapsFile(ctx),
    requests: await requestsFile(ctx),
    qr: qrFile(ctx),
    linking: await linkingFile({
      keys: ctx.keys,
      previous: previous.linking,
      apiBase: API_BASE,
      hospitalId: HOSPITAL_ID,
      patientRef: ctx.patientRef,
      linkerCertificate: linkerCertificate as string,
      linkerCertificateExpiresAt: CERT_EXPIRES,
      witnessKey: witnessKey().publicKey,
      records: [
        { recordId: RECORD_ID, contentKey: ctx.contentKey },
        { recordId: OTHER_RECORD_ID, contentKey: seed('other content key') },
      ],
      conventions: CONVENTIONS,
    }),
    transparency: await generateTlogVectors(),
  };
}

export const vectorPath = (name: VectorFile): string => fileURLToPath(new URL(`${name}.json`, VECTOR_DIR));

/** The committed vector files (those that exist and parse). */
export function readCommittedVectors(): Partial<VectorSet> {
  const out: Partial<VectorSet> = {};
  for (const name of VECTOR_FILES) {
    try {
      out[name] = JSON.parse(readFileSync(vectorPath(name), 'utf8'));
    } catch {
      // absent or unreadable: generated afresh
    }
  }
  return out;
}

/** Each file's exact text: the vectors as JSON, formatted as the repository's prettier formats them. */
export async function renderVectors(vectors: VectorSet): Promise<Record<VectorFile, string>> {
  const out = {} as Record<VectorFile, string>;
  for (const name of VECTOR_FILES) {
    const filepath = vectorPath(name);
    const options = (await prettier.resolveConfig(filepath)) ?? {};
    out[name] = await prettier.format(JSON.stringify(vectors[name], null, 2), { ...options, filepath });
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const rendered = await renderVectors(await generateVectors(readCommittedVectors()));
  let stale = 0;
  for (const name of VECTOR_FILES) {
    const path = vectorPath(name);
    let current: string | undefined;
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === rendered[name]) continue;
    stale += 1;
    if (check) console.error(`${path} differs from what the generator makes`);
    else {
      writeFileSync(path, rendered[name]);
      console.log(`wrote ${path}`);
    }
  }
  if (check && stale > 0) process.exitCode = 1;
  else if (stale === 0) console.log('vectors/ is up to date');
}
