// vectors/linking.json (docs/PROTOCOL.md §17): the link QR, the `cb/device-link/v1` document as
// the new phone and the pairing function check it, the content keys it re-wraps, and the linked
// device certificate. The linking device is the `device` key with the device certificate of
// signatures.json; the new phone is `otherDevice`; the link's wrap key is `linkWrap`.
//
// The link is built here from PROTOCOL.md's tables, not by buildDeviceLink: the library makes a
// fresh wrap key per link, and a vector needs a fixed one. The library is then asked to accept
// every valid vector and to refuse every negative one with its code, and its own
// linkedCertificateFor must make the committed certificate, so the tables and the code cannot
// part. Signatures and Secure Message wraps are randomised and kept while they verify (common.ts).
import { importPublicKey, sign, verify } from '../../shared/core/crypto/index.ts';
import { contentKeyBytes } from '../../shared/core/crypto/keys.ts';
import {
  acceptDeviceLink,
  canonicalJson,
  contentKeyFromLink,
  decodeLinkQr,
  DEVICE_LINK_TYPE,
  encodeLinkQr,
  LINKED_DEVICE_CERTIFICATE_TYPE,
  linkedCertificateFor,
  linkIdOf,
  readDeviceLinkUnverified,
  verifyAnyDeviceCertificate,
  verifyDeviceLink,
  verifyLinkedDevice,
} from '../../shared/core/protocol/index.ts';
import type { DeviceLink, LinkPlatform, LinkQr } from '../../shared/core/protocol/index.ts';
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
  keyWrapPayload,
  secureMessageDecrypt,
  secureMessageEncrypt,
  sha256,
  signedParts,
  unb64,
  unhex,
  utf8,
} from './common.ts';
import type { KeyName, TestKeys } from './common.ts';

export const LINK_ID_FORMULA = 'base64url(SHA-256("cb/link-id/v1" || secret))';
export const LINK_PROOF_FORMULA =
  'base64url(HMAC-SHA256(secret, "cb/link-proof/v1" || SHA-256(UTF-8(canonical JSON of the link without linkProof))))';

// ---- The link QR (§17.1) ----

export interface LinkQrFields {
  readonly apiBase: string;
  readonly hospitalId: string;
  readonly devicePublicKey: string;
  readonly secretHex: string;
  readonly platform: LinkPlatform;
}

const PLATFORM_BYTES: Record<LinkPlatform, number> = { ios: 0, android: 1, other: 2 };

/** The payload of §17.1 from its table: lets a negative break one field. */
function linkQrPayload(f: LinkQrFields, options: { keyBytes?: Uint8Array; platformByte?: number } = {}) {
  const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
  return concat(
    [f.apiBase.length],
    ascii(f.apiBase),
    [f.hospitalId.length],
    ascii(f.hospitalId),
    options.keyBytes ?? unb64(f.devicePublicKey),
    unhex(f.secretHex),
    [options.platformByte ?? PLATFORM_BYTES[f.platform]],
  );
}

export function linkQrOf(f: LinkQrFields): LinkQr {
  return {
    apiBase: f.apiBase,
    hospitalId: f.hospitalId,
    devicePublicKey: importPublicKey(f.devicePublicKey),
    secret: unhex(f.secretHex),
    platform: f.platform,
  };
}

/** linkId by its formula (the generator checks the library's linkIdOf agrees). */
export const linkIdFormula = (secret: Uint8Array): string =>
  b64(sha256(concat(utf8('cb/link-id/v1'), secret)));

/** linkProof by its formula, over the canonical JSON of everything else in the link. */
export function linkProofFormula(secret: Uint8Array, unproven: object): string {
  return b64(hmac(secret, utf8('cb/link-proof/v1'), sha256(utf8(canonicalJson(unproven)))));
}

// ---- How each party checks, as the vectors name it ----

export interface LinkerStateVector {
  readonly deviceId: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly status: 'active' | 'revoked';
  readonly expiresAt: string;
  /** The certificate the pairing function issued the linking device (base64url signed form). */
  readonly linkedByCertificate: string;
}

/** A link refusal: by the new phone (with the QR it showed) or by the pairing function. */
export interface LinkCheck {
  readonly checkedBy: 'newPhone' | 'pairingFunction';
  readonly signed: string;
  /** newPhone: the QR text the new phone showed. */
  readonly qr?: string;
  /** pairingFunction: what it knows of the signer, its clock, the linkIds it has accepted. */
  readonly linker?: LinkerStateVector;
  readonly at?: string;
  readonly usedLinkIds?: readonly string[];
}

export function checkLink(entry: LinkCheck): DeviceLink {
  const signed = unb64(entry.signed);
  if (entry.checkedBy === 'newPhone') return acceptDeviceLink(signed, decodeLinkQr(entry.qr!));
  const linker = entry.linker!;
  return verifyDeviceLink(signed, {
    linker: {
      deviceId: linker.deviceId,
      hospitalId: linker.hospitalId,
      patientRef: linker.patientRef,
      status: linker.status,
      expiresAt: new Date(linker.expiresAt),
      certificate: linker.linkedByCertificate,
    },
    now: new Date(entry.at!),
    usedLinkIds: new Set(entry.usedLinkIds ?? []),
  });
}

/** A re-wrapped key as the new phone takes it from its link (contentKeyFromLink). */
export interface UnwrapCheck {
  readonly wrapKey: string;
  readonly keys: readonly { recordId: string; wrappedKey: string }[];
  readonly recordId: string;
  readonly device: KeyName;
}

export function unwrapFromLink(keys: TestKeys, link: DeviceLink, entry: UnwrapCheck): Uint8Array {
  const variant: DeviceLink = { ...link, wrapKey: entry.wrapKey, keys: [...entry.keys] };
  return contentKeyBytes(contentKeyFromLink(variant, entry.recordId, keys[entry.device].pair));
}

/** The connector's and other phones' check of a linked device (verifyLinkedDevice). */
export interface LinkedDeviceCheck {
  readonly signed: string;
  /** The name of the `link.valid` entry the certificate is presented with. */
  readonly link: string;
  readonly verifyWith: KeyName;
  readonly at: string;
}

export function checkLinkedDevice(
  keys: TestKeys,
  entry: LinkedDeviceCheck,
  signedLinkOf: (name: string) => string,
) {
  return verifyLinkedDevice(
    { certificate: unb64(entry.signed), link: unb64(signedLinkOf(entry.link)) },
    keys[entry.verifyWith].pair.publicKey,
    new Date(entry.at),
  );
}

// ---- The file ----

export interface LinkingInputs {
  readonly keys: TestKeys;
  readonly previous: unknown;
  readonly apiBase: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  /** signatures.json's "device certificate": the linking device's, signed by `pairing`. */
  readonly linkerCertificate: string;
  readonly linkerCertificateExpiresAt: string;
  readonly witnessKey: Uint8Array;
  readonly records: readonly { readonly recordId: string; readonly contentKey: Uint8Array }[];
  readonly conventions: string;
}

const SECRET = counting(0x60, 32);
const SECOND_SECRET = counting(0x62, 32);
const OTHER_SECRET = counting(0x61, 32);
const LINK_ISSUED = '2026-03-02T18:04:11Z';
const LINKED_ISSUED = '2026-03-02T18:04:13Z';
const MAIN_LINK = 'a link re-wrapping two records';
const EMPTY_LINK = 'a link with no records';

export async function linkingFile(input: LinkingInputs): Promise<unknown> {
  const { keys, previous } = input;
  const pub = (name: KeyName) => keys[name].pair.publicKey;
  const priv = (name: KeyName) => keys[name].pair.privateKey;
  const fingerprint = (name: KeyName) => pub(name).fingerprint;

  // ---- QR ----
  const android: LinkQrFields = {
    apiBase: input.apiBase,
    hospitalId: input.hospitalId,
    devicePublicKey: keys.otherDevice.publicKey,
    secretHex: hex(SECRET),
    platform: 'android',
  };
  const ios: LinkQrFields = { ...android, secretHex: hex(SECOND_SECRET), platform: 'ios' };
  const local: LinkQrFields = {
    ...android,
    apiBase: 'http://127.0.0.1:8470/cb',
    hospitalId: 'test-hospital-1',
    platform: 'other',
  };
  const qrValid = [
    { name: 'a new Android phone', fields: android },
    { name: 'a new iOS phone', fields: ios },
    { name: 'local stack, another platform', fields: local },
  ].map(({ name, fields }) => {
    const payload = linkQrPayload(fields);
    const text = encodeLinkQr(linkQrOf(fields));
    if (text !== `CBL1:${b64(payload)}`) throw new Error('the link QR encoder disagrees with §17.1');
    const linkId = linkIdFormula(unhex(fields.secretHex));
    if (linkIdOf(unhex(fields.secretHex)) !== linkId) throw new Error('linkIdOf disagrees with §17.1');
    return { name, fields, payloadHex: hex(payload), text, textLength: text.length, linkId };
  });
  const qrText = (name: string): string => qrValid.find((q) => q.name === name)!.text;
  const payload = linkQrPayload(android);
  const body = b64(payload);
  const qrInvalid = [
    { name: 'a later version', text: `CBL2:${body}`, expectedError: 'QR_VERSION_UNSUPPORTED' },
    { name: 'a lower-case prefix', text: `cbl1:${body}`, expectedError: 'QR_MALFORMED' },
    { name: 'the invitation prefix', text: `CB1:${body}`, expectedError: 'QR_MALFORMED' },
    { name: 'base64 padding', text: `CBL1:${body}=`, expectedError: 'QR_MALFORMED' },
    {
      name: 'standard base64 alphabet',
      text: `CBL1:${body.replaceAll('-', '+').replaceAll('_', '/')}`,
      expectedError: 'QR_MALFORMED',
    },
    { name: 'a trailing byte', text: `CBL1:${b64(concat(payload, [0]))}`, expectedError: 'QR_MALFORMED' },
    {
      name: 'truncated by one byte',
      text: `CBL1:${b64(payload.subarray(0, -1))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'platform byte 3',
      text: `CBL1:${b64(linkQrPayload(android, { platformByte: 3 }))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'http to a public host',
      text: `CBL1:${b64(linkQrPayload({ ...android, apiBase: 'http://api.clinic-bridge.example' }))}`,
      expectedError: 'QR_API_BASE_INVALID',
    },
    {
      name: 'an apiBase with a trailing slash',
      text: `CBL1:${b64(linkQrPayload({ ...android, apiBase: `${input.apiBase}/` }))}`,
      expectedError: 'QR_API_BASE_INVALID',
    },
    {
      name: 'an upper-case hospitalId',
      text: `CBL1:${b64(linkQrPayload({ ...android, hospitalId: 'St-Example-ZH' }))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'a private key where the device key belongs',
      text: `CBL1:${b64(linkQrPayload(android, { keyBytes: unb64(keys.otherDevice.privateKey) }))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'a device key with a flipped point byte',
      text: `CBL1:${b64(linkQrPayload(android, { keyBytes: flipByte(unb64(android.devicePublicKey), 20) }))}`,
      expectedError: 'QR_MALFORMED',
    },
    {
      name: 'longer than 400 characters',
      text: `CBL1:${b64(linkQrPayload({ ...android, apiBase: `${input.apiBase}/${'a'.repeat(200)}` }))}`,
      expectedError: 'QR_MALFORMED',
    },
  ];
  for (const entry of qrInvalid) {
    const code = await errorCodeOf(() => decodeLinkQr(entry.text));
    if (code !== entry.expectedError)
      throw new Error(`linking QR "${entry.name}": ${code} instead of ${entry.expectedError}`);
  }
  const qrUnencodable = [
    {
      name: 'an apiBase that is not canonical',
      fields: { ...android, apiBase: `${input.apiBase}/` },
      expectedError: 'QR_API_BASE_INVALID',
    },
    {
      name: 'a secret of 31 bytes',
      fields: { ...android, secretHex: hex(counting(0x60, 31)) },
      expectedError: 'QR_MALFORMED',
    },
  ];
  for (const entry of qrUnencodable) {
    const code = await errorCodeOf(() => encodeLinkQr(linkQrOf(entry.fields)));
    if (code !== entry.expectedError)
      throw new Error(`linking QR "${entry.name}": ${code} instead of ${entry.expectedError}`);
  }

  // ---- The re-wrapped keys (§17.2, §2.4 with the link's wrap key) ----
  const committedLinks = committedAt(previous, 'link', 'valid');
  const committedMain = committedNamed(committedLinks, MAIN_LINK);
  const wrapped = (committed: unknown, payloadBytes: Uint8Array, wrapKey: KeyName = 'linkWrap') =>
    keepOrMake(
      typeof committed === 'string' ? committed : undefined,
      (text) =>
        hex(secureMessageDecrypt(priv('otherDevice'), pub(wrapKey), unb64(text))) === hex(payloadBytes),
      () => b64(secureMessageEncrypt(priv(wrapKey), pub('otherDevice'), payloadBytes)),
    );
  const records = [];
  for (const [i, record] of input.records.entries()) {
    const payloadBytes = keyWrapPayload(
      pub('linkWrap'),
      pub('otherDevice'),
      record.recordId,
      record.contentKey,
    );
    records.push({
      recordId: record.recordId,
      contentKeyHex: hex(record.contentKey),
      payloadHex: hex(payloadBytes),
      wrappedKey: await wrapped(
        committedAt(committedMain, 'document', 'keys', i, 'wrappedKey'),
        payloadBytes,
      ),
    });
  }

  // ---- The link documents ----
  const unprovenOf = (secret: Uint8Array, fields: LinkQrFields, extra: object) => ({
    type: DEVICE_LINK_TYPE,
    linkId: linkIdFormula(secret),
    hospitalId: input.hospitalId,
    patientRef: input.patientRef,
    linkedBy: fingerprint('device'),
    linkedByCertificate: input.linkerCertificate,
    deviceId: importPublicKey(fields.devicePublicKey).fingerprint,
    devicePublicKey: fields.devicePublicKey,
    platform: fields.platform,
    hospitalPublicKey: keys.hospital.publicKey,
    wrapKey: keys.linkWrap.publicKey,
    keys: [] as { recordId: string; wrappedKey: string }[],
    issuedAt: LINK_ISSUED,
    ...extra,
  });
  const proven = <T extends object>(secret: Uint8Array, unproven: T) => ({
    ...unproven,
    linkProof: linkProofFormula(secret, unproven),
  });
  const mainUnproven = unprovenOf(SECRET, android, {
    witnessKey: b64(input.witnessKey),
    keys: records.map((r) => ({ recordId: r.recordId, wrappedKey: r.wrappedKey })),
  });
  const emptyUnproven = unprovenOf(SECOND_SECRET, ios, {});
  const linkDocuments = [
    { name: MAIN_LINK, qr: 'a new Android phone', secret: SECRET, unproven: mainUnproven },
    { name: EMPTY_LINK, qr: 'a new iOS phone', secret: SECOND_SECRET, unproven: emptyUnproven },
  ];
  const signedAs = (committed: unknown, message: Uint8Array, signer: KeyName) =>
    keepOrMake(
      typeof committed === 'string' ? committed : undefined,
      (text) => hex(verify(unb64(text), pub(signer))) === hex(message),
      () => b64(sign(message, priv(signer))),
    );
  const linker: LinkerStateVector = {
    deviceId: fingerprint('device'),
    hospitalId: input.hospitalId,
    patientRef: input.patientRef,
    status: 'active',
    expiresAt: input.linkerCertificateExpiresAt,
    linkedByCertificate: input.linkerCertificate,
  };
  const linkValid = [];
  const signedLinkOf = new Map<string, string>();
  for (const d of linkDocuments) {
    const document = proven(d.secret, d.unproven);
    const proofInput = utf8(canonicalJson(d.unproven));
    const old = committedNamed(committedLinks, d.name);
    const signed = await signedAs(old?.signed, utf8(canonicalJson(document)), 'device');
    signedLinkOf.set(d.name, signed);
    // Both parties of §17.4 accept it, as the library checks them.
    const byPhone = checkLink({ checkedBy: 'newPhone', signed, qr: qrText(d.qr) });
    const byPairing = checkLink({ checkedBy: 'pairingFunction', signed, linker, at: LINK_ISSUED });
    if (
      canonicalJson(byPhone) !== canonicalJson(document) ||
      canonicalJson(byPairing) !== canonicalJson(document)
    )
      throw new Error(`linking "${d.name}": the library reads another document`);
    linkValid.push({
      name: d.name,
      qr: d.qr,
      signer: 'device' as KeyName,
      at: LINK_ISSUED,
      document,
      proofInput: { canonicalJsonUtf8: canonicalJson(d.unproven), sha256Hex: hex(sha256(proofInput)) },
      signed,
    });
  }
  const linkNamed = (name: string): string => signedLinkOf.get(name)!;
  const mainSigned = unb64(linkNamed(MAIN_LINK));
  const mainDocument = proven(SECRET, mainUnproven);
  const otherQr = b64(linkQrPayload({ ...android, secretHex: hex(OTHER_SECRET) }));
  const linkerQr = b64(linkQrPayload({ ...android, devicePublicKey: keys.device.publicKey }));

  const committedInvalid = committedAt(previous, 'link', 'invalid');
  // A link the linking device signs with one thing changed: its signature is valid, so the
  // refusal is the change's.
  const resigned = async (name: string, document: object, signer: KeyName = 'device', text?: string) =>
    signedAs(committedNamed(committedInvalid, name)?.signed, utf8(text ?? canonicalJson(document)), signer);
  const swapped = [...mainUnproven.keys]
    .reverse()
    .map((k, i) => ({ ...k, recordId: mainUnproven.keys[i]!.recordId }));
  const anotherSecretLinkId = proven(SECRET, { ...mainUnproven, linkId: linkIdFormula(OTHER_SECRET) });
  const newPhone = (
    name: string,
    signed: string,
    expectedError: string,
    qr = qrText('a new Android phone'),
  ) => ({
    name,
    checkedBy: 'newPhone' as const,
    qr,
    signed,
    expectedError,
  });
  const pairingFunction = (
    name: string,
    expectedError: string,
    change: {
      linker?: Partial<LinkerStateVector>;
      at?: string;
      usedLinkIds?: string[];
      signed?: string;
    } = {},
  ) => ({
    name,
    checkedBy: 'pairingFunction' as const,
    linker: { ...linker, ...change.linker },
    at: change.at ?? LINK_ISSUED,
    usedLinkIds: change.usedLinkIds ?? [],
    signed: change.signed ?? b64(mainSigned),
    expectedError,
  });
  const byNewPhoneKey = await resigned(
    'signed by the new phone, not the linking device',
    mainDocument,
    'otherDevice',
  );
  const { message: mainMessage } = signedParts(mainSigned);
  const linkInvalid = [
    newPhone('checked with another QR secret', b64(mainSigned), 'LINK_PROOF_INVALID', `CBL1:${otherQr}`),
    newPhone(
      'checked against a QR of another device key',
      b64(mainSigned),
      'LINK_INVALID',
      `CBL1:${linkerQr}`,
    ),
    newPhone(
      'the hospital key replaced after the proof was made',
      await resigned('the hospital key replaced after the proof was made', {
        ...mainDocument,
        hospitalPublicKey: keys.pairing.publicKey,
      }),
      'LINK_PROOF_INVALID',
    ),
    newPhone(
      'the wrap key replaced after the proof was made',
      await resigned('the wrap key replaced after the proof was made', {
        ...mainDocument,
        wrapKey: keys.wrap.publicKey,
      }),
      'LINK_PROOF_INVALID',
    ),
    newPhone(
      'the re-wrapped keys swapped after the proof was made',
      await resigned('the re-wrapped keys swapped after the proof was made', {
        ...mainDocument,
        keys: swapped,
      }),
      'LINK_PROOF_INVALID',
    ),
    newPhone(
      'the linkId of another secret, proved with the right one',
      await resigned('the linkId of another secret, proved with the right one', anotherSecretLinkId),
      'LINK_PROOF_INVALID',
    ),
    newPhone('signed by the new phone, not the linking device', byNewPhoneKey, 'LINK_INVALID'),
    newPhone('a flipped signature byte', b64(flipByte(mainSigned, -3)), 'LINK_INVALID'),
    newPhone('a flipped message byte', b64(flipByte(mainSigned, 12 + 30)), 'LINK_INVALID'),
    newPhone('a high-s signature', b64(highS(mainSigned)), 'LINK_INVALID'),
    newPhone('a trailing byte', b64(concat(mainSigned, [0])), 'LINK_INVALID'),
    newPhone(
      'a deviceId that is not the fingerprint of devicePublicKey',
      await resigned('a deviceId that is not the fingerprint of devicePublicKey', {
        ...mainDocument,
        deviceId: fingerprint('ingest'),
      }),
      'LINK_INVALID',
    ),
    newPhone(
      'a record carried twice',
      await resigned('a record carried twice', {
        ...mainDocument,
        keys: [mainUnproven.keys[0]!, mainUnproven.keys[0]!],
      }),
      'LINK_INVALID',
    ),
    newPhone(
      'signed as non-canonical JSON',
      await resigned(
        'signed as non-canonical JSON',
        mainDocument,
        'device',
        canonicalJson(mainDocument).replace('{"deviceId":', '{ "deviceId":'),
      ),
      'LINK_INVALID',
    ),
    pairingFunction('the linking device is revoked', 'DEVICE_REVOKED', { linker: { status: 'revoked' } }),
    pairingFunction("the linking device's enrolment expired", 'DEVICE_REVOKED', {
      linker: { expiresAt: LINK_ISSUED },
    }),
    pairingFunction('301 s after it was issued', 'REQUEST_EXPIRED', { at: '2026-03-02T18:09:12Z' }),
    pairingFunction('301 s before it was issued', 'REQUEST_EXPIRED', { at: '2026-03-02T17:59:10Z' }),
    pairingFunction('a linkId already accepted', 'LINK_REPLAYED', { usedLinkIds: [mainDocument.linkId] }),
    pairingFunction('linkedBy is not the device the pairing function knows', 'LINK_INVALID', {
      linker: { deviceId: fingerprint('otherDevice') },
    }),
    pairingFunction('the linking device is of another patient', 'LINK_INVALID', {
      linker: { patientRef: b64(counting(0x70, 16)) },
    }),
    pairingFunction('signed by another key than the certificate names', 'LINK_INVALID', {
      signed: byNewPhoneKey,
    }),
    pairingFunction('checked by the pairing function with a flipped signature byte', 'LINK_INVALID', {
      signed: b64(flipByte(mainSigned, 12 + mainMessage.length + 8)),
    }),
  ];
  for (const entry of linkInvalid) {
    const code = await errorCodeOf(() => checkLink(entry));
    if (code !== entry.expectedError)
      throw new Error(`linking "${entry.name}": ${code} instead of ${entry.expectedError}`);
  }

  // ---- Unwrapping from the link (§17.4, §2.4) ----
  const mainLink = readDeviceLinkUnverified(mainSigned);
  const asLinked = {
    wrapKey: keys.linkWrap.publicKey,
    keys: mainUnproven.keys,
    device: 'otherDevice' as KeyName,
  };
  const [first, second] = records;
  const committedUnwrap = committedAt(previous, 'unwrap', 'invalid');
  const naming = async (name: string, wrapKeyInPayload: KeyName, deviceInPayload: KeyName) => {
    const payloadBytes = keyWrapPayload(
      pub(wrapKeyInPayload),
      pub(deviceInPayload),
      first!.recordId,
      unhex(first!.contentKeyHex),
    );
    const wrappedKey = await wrapped(
      committedAt(committedNamed(committedUnwrap, name), 'keys', 0, 'wrappedKey'),
      payloadBytes,
    );
    return { keys: [{ recordId: first!.recordId, wrappedKey }], payloadHex: hex(payloadBytes) };
  };
  const unwrapInvalid = [
    {
      name: 'a record the link does not carry',
      ...asLinked,
      recordId: b64(counting(0xa0, 16)),
      expectedError: 'NOT_A_RECIPIENT',
    },
    {
      name: 'unwrapped by the linking device',
      ...asLinked,
      device: 'device' as KeyName,
      recordId: first!.recordId,
      expectedError: 'KEY_UNWRAP_FAILED',
    },
    {
      name: "unwrapped with the upload's wrap key",
      ...asLinked,
      wrapKey: keys.wrap.publicKey,
      recordId: first!.recordId,
      expectedError: 'KEY_UNWRAP_FAILED',
    },
    {
      name: 'the wraps of two records swapped',
      ...asLinked,
      keys: swapped,
      recordId: first!.recordId,
      expectedError: 'KEY_BINDING_MISMATCH',
    },
    {
      name: "a payload naming the linking device's key",
      ...asLinked,
      ...(await naming("a payload naming the linking device's key", 'linkWrap', 'device')),
      recordId: first!.recordId,
      expectedError: 'KEY_BINDING_MISMATCH',
    },
    {
      name: "a payload naming the upload's wrap key",
      ...asLinked,
      ...(await naming("a payload naming the upload's wrap key", 'wrap', 'otherDevice')),
      recordId: first!.recordId,
      expectedError: 'KEY_BINDING_MISMATCH',
    },
  ].map(({ name, wrapKey, keys: entryKeys, recordId, device, expectedError, ...rest }) => ({
    name,
    wrapKey,
    keys: entryKeys,
    recordId,
    device,
    ...rest,
    expectedError,
  }));
  for (const record of records) {
    const key = unwrapFromLink(keys, mainLink, { ...asLinked, recordId: record.recordId });
    if (hex(key) !== record.contentKeyHex)
      throw new Error(`linking: ${record.recordId} unwraps to another key`);
  }
  for (const entry of unwrapInvalid) {
    const code = await errorCodeOf(() => unwrapFromLink(keys, mainLink, entry));
    if (code !== entry.expectedError)
      throw new Error(`linking unwrap "${entry.name}": ${code} instead of ${entry.expectedError}`);
  }
  if (second === undefined) throw new Error('linking needs two records');

  // ---- The linked device certificate (§17.3) ----
  const certificate = {
    type: LINKED_DEVICE_CERTIFICATE_TYPE,
    deviceId: fingerprint('otherDevice'),
    devicePublicKey: keys.otherDevice.publicKey,
    hospitalId: input.hospitalId,
    patientRef: input.patientRef,
    linkedBy: fingerprint('device'),
    linkId: mainDocument.linkId,
    linkSha256: b64(sha256(mainSigned)),
    issuedAt: LINKED_ISSUED,
    expiresAt: input.linkerCertificateExpiresAt,
  };
  const issued = linkedCertificateFor(mainLink, mainSigned, {
    issuedAt: new Date(LINKED_ISSUED),
    expiresAt: new Date(input.linkerCertificateExpiresAt),
  });
  if (canonicalJson(issued) !== canonicalJson(certificate))
    throw new Error('linkedCertificateFor disagrees with §17.3');
  const committedCertificate = committedAt(previous, 'linkedCertificate');
  const signedCertificate = await signedAs(
    committedAt(committedCertificate, 'valid', 'signed'),
    utf8(canonicalJson(certificate)),
    'pairing',
  );
  const certificateBytes = unb64(signedCertificate);
  const checked = checkLinkedDevice(
    keys,
    {
      signed: signedCertificate,
      link: MAIN_LINK,
      verifyWith: 'pairing',
      at: LINKED_ISSUED,
    },
    linkNamed,
  );
  if (canonicalJson(checked.certificate) !== canonicalJson(certificate))
    throw new Error('verifyLinkedDevice reads another certificate');
  const certificateInvalidAt = committedAt(committedCertificate, 'invalid');
  const reissued = async (name: string, document: object, signer: KeyName = 'pairing') =>
    signedAs(committedNamed(certificateInvalidAt, name)?.signed, utf8(canonicalJson(document)), signer);
  const linked = (
    name: string,
    expectedError: string,
    change: Partial<LinkedDeviceCheck> = {},
  ): LinkedDeviceCheck & { name: string; expectedError: string } => ({
    name,
    signed: signedCertificate,
    link: MAIN_LINK,
    verifyWith: 'pairing',
    at: LINKED_ISSUED,
    ...change,
    expectedError,
  });
  const { message: certificateMessage } = signedParts(certificateBytes);
  const certificateInvalid = [
    linked('a linked certificate at its expiry', 'CERTIFICATE_EXPIRED', {
      at: input.linkerCertificateExpiresAt,
    }),
    linked('a linked certificate more than 300 s before it was issued', 'CERTIFICATE_INVALID', {
      at: '2026-03-02T17:59:12Z',
    }),
    linked('a linked certificate verified with the hospital key', 'CERTIFICATE_INVALID', {
      verifyWith: 'hospital',
    }),
    linked('a linked certificate with a flipped signature byte', 'CERTIFICATE_INVALID', {
      signed: b64(flipByte(certificateBytes, 12 + certificateMessage.length + 8)),
    }),
    linked('a linked certificate with a high-s signature', 'CERTIFICATE_INVALID', {
      signed: b64(highS(certificateBytes)),
    }),
    linked('a linked certificate beside another link', 'LINK_INVALID', {
      link: EMPTY_LINK,
    }),
    linked("the linking device's own certificate where a linked one belongs", 'CERTIFICATE_INVALID', {
      signed: input.linkerCertificate,
    }),
    linked('a linked certificate signed by the linking device', 'CERTIFICATE_INVALID', {
      signed: await reissued('a linked certificate signed by the linking device', certificate, 'device'),
    }),
    linked('a linked certificate naming another patient', 'LINK_INVALID', {
      signed: await reissued('a linked certificate naming another patient', {
        ...certificate,
        patientRef: b64(counting(0x70, 16)),
      }),
    }),
    linked('a linked certificate naming another linking device', 'LINK_INVALID', {
      signed: await reissued('a linked certificate naming another linking device', {
        ...certificate,
        linkedBy: fingerprint('ingest'),
      }),
    }),
  ];
  for (const entry of certificateInvalid) {
    const code = await errorCodeOf(() => checkLinkedDevice(keys, entry, linkNamed));
    if (code !== entry.expectedError)
      throw new Error(`linked certificate "${entry.name}": ${code} instead of ${entry.expectedError}`);
  }
  // The certificate alone verifies as a device's certificate would (verifyAnyDeviceCertificate).
  verifyAnyDeviceCertificate(certificateBytes, pub('pairing'), new Date(LINKED_ISSUED));

  return {
    description: `Clinic Bridge device linking (PROTOCOL.md §17). A paired phone (the \`device\` key, enrolled with signatures.json's "device certificate") links a new phone (\`otherDevice\`) that showed a link QR; the link re-wraps content keys under the link's own wrap key (\`linkWrap\`). \`qr\`: \`fields\` encode to \`text\` exactly and decode back; \`linkId\` is ${LINK_ID_FORMULA}; every \`invalid\` text must be refused by the decoder and every \`unencodable\` field set by the encoder with \`expectedError\`. \`link.valid\`: \`document\` is deterministic given the randomised \`linkedByCertificate\` and \`wrappedKey\` values it carries; its \`linkProof\` is ${LINK_PROOF_FORMULA} (\`proofInput\` shows the canonical JSON and its SHA-256); \`signed\` is the document signed by \`signer\` (Secure Message sign, randomised: verify it, and the message inside must be the canonical JSON of \`document\`). A link must be accepted both by the new phone that showed \`qr\` and by the pairing function at \`at\` with \`link.linker\` as its state. \`link.invalid\`: refused with \`expectedError\` when \`checkedBy\` the new phone (with the QR text \`qr\`) or the pairing function (state \`linker\`, clock \`at\`, accepted \`usedLinkIds\`). \`unwrap\`: each record of the "${MAIN_LINK}" link opens for the new phone to \`contentKeyHex\` through the §2.4 payload \`payloadHex\` (wrap key \`linkWrap\`, device \`otherDevice\`); each \`invalid\` entry, the link's \`wrapKey\` and \`keys\` replaced as given and opened as \`recordId\` by \`device\`, is refused with \`expectedError\`. \`linkedCertificate\`: the pairing function's certificate for that link; \`signed\` beside the signed form of the \`link.valid\` entry named \`link\`, verified with \`verifyWith\`'s key at \`at\` as the connector and other phones do (certificate, then the link it names by SHA-256, then the link's signer certificate), must be accepted, and each \`invalid\` entry refused with \`expectedError\`. ${input.conventions}`,
    qr: { valid: qrValid, invalid: qrInvalid, unencodable: qrUnencodable },
    link: { linker, valid: linkValid, invalid: linkInvalid },
    unwrap: {
      link: MAIN_LINK,
      wrapKey: 'linkWrap' as KeyName,
      device: 'otherDevice' as KeyName,
      records: records.map(({ wrappedKey: _wrapped, ...record }) => record),
      invalid: unwrapInvalid,
    },
    linkedCertificate: {
      valid: {
        name: 'linked device certificate',
        link: MAIN_LINK,
        verifyWith: 'pairing' as KeyName,
        at: LINKED_ISSUED,
        document: certificate,
        signed: signedCertificate,
      },
      invalid: certificateInvalid,
    },
  };
}
