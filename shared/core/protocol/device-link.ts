// Device linking (docs/PROTOCOL.md §17): a phone that is already paired adds a new phone of the
// same patient and hands it the history, in the Signal style, without key escrow.
//
//   1. The new phone makes its key pair and shows a link QR ("CBL1:"): apiBase, hospitalId, its
//      public key, a one-time secret and its platform. Never a private key.
//   2. The paired phone scans it and signs a `cb/device-link/v1` document: itself (id and the
//      pairing function's certificate), the new key, the hospital keys it pinned, and, for each
//      live record it can open, the record's content key re-wrapped for the new key (§2.4's
//      payload, under a fresh link wrap key whose private half is destroyed once signed). A
//      link proof, HMAC under the QR secret over everything else, tells the new phone that the
//      document came from whoever scanned its QR, not from the cloud.
//   3. The pairing function checks the signature is by a current device of the same patient and
//      issues a `cb/linked-device-certificate/v1` naming the link; the new phone checks the link
//      proof before it trusts any key the document hands it.
//
// The cloud stores only signatures and opaque wraps: it holds neither the QR secret (so it cannot
// forge a link the new phone accepts) nor any device private key (so it cannot open a wrap), and
// without a current device's signature it cannot make a link the pairing function accepts.
import { z } from 'zod';
import { createKeyWrapper, importPublicKey, unwrapContentKey, wrappedKeyLength } from '../crypto/index.ts';
import type { ContentKey, KeyPair, PrivateKey, PublicKey } from '../crypto/index.ts';
import type { ByteSource } from './byte-reader.ts';
import { readUploadContainer } from './container.ts';
import type { ContainerLimits, UploadContainer } from './container.ts';
import {
  DEVICE_CERTIFICATE_TYPE,
  deviceCertificateSchema,
  platformSchema,
  recipientFor,
  verifyDeviceCertificate,
  wrappedKeyBytes,
} from './documents.ts';
import type { DeviceCertificate, UploadManifest } from './documents.ts';
import {
  canonicalJson,
  concatBytes,
  equalBytes,
  fromBase64Url,
  hmacSha256,
  sha256,
  toBase64Url,
  utf8,
} from './encoding.ts';
import { ProtocolError, toProtocolError } from './error-codes.ts';
import {
  deviceIdSchema,
  formatTimestamp,
  hospitalIdSchema,
  patientRefSchema,
  publicKeyFrom,
  publicKeySchema,
  recordIdSchema,
  sha256Schema,
  signedDocumentTextSchema,
  timestampSchema,
} from './ids.ts';
import { canonicalApiBase } from './qr.ts';
import {
  openVerifiedRecord,
  verifiedManifestOf,
  type OpenedRecord,
  type VerifiedRecordOptions,
} from './upload.ts';
import {
  readDocumentUnverified,
  signDocument,
  signedMessageUnverified,
  verifyDocument,
} from './signed-document.ts';
import type { DocumentErrorCodes } from './signed-document.ts';

export const LINK_QR_PREFIX = 'CBL1:';
export const DEVICE_LINK_TYPE = 'cb/device-link/v1';
export const LINKED_DEVICE_CERTIFICATE_TYPE = 'cb/linked-device-certificate/v1';
export const LINK_ID_LABEL = 'cb/link-id/v1';
export const LINK_PROOF_LABEL = 'cb/link-proof/v1';
export const LINK_SECRET_BYTES = 32;
/**
 * Most re-wrapped keys one link carries: each entry is about 290 bytes of canonical JSON, so 150
 * keep the document well inside the 64 KiB of a signed document.
 */
export const MAX_LINK_KEYS = 150;
/** How far a link's issuedAt may be from the pairing function's clock (as a pair request). */
export const LINK_SKEW_SECONDS = 300;

const PLATFORMS = ['ios', 'android', 'other'] as const;
export type LinkPlatform = (typeof PLATFORMS)[number];

// ---- The link QR ----

/** What the new phone shows. The secret never leaves the two phones. */
export interface LinkQr {
  readonly apiBase: string;
  readonly hospitalId: string;
  /** The new phone's fresh public key; its fingerprint is the new deviceId. */
  readonly devicePublicKey: PublicKey;
  /** 32 random bytes, one-time: the key of the link proof. */
  readonly secret: Uint8Array;
  readonly platform: LinkPlatform;
}

/** A fresh one-time link secret. */
export function newLinkSecret(): Uint8Array {
  return new Uint8Array(globalThis.crypto.getRandomValues(new Uint8Array(LINK_SECRET_BYTES)));
}

/**
 * "CBL1:" + base64url of: apiBase length (1) ‖ apiBase ‖ hospitalId length (1) ‖ hospitalId ‖
 * device public key (45) ‖ secret (32) ‖ platform (1: 0 ios, 1 android, 2 other).
 */
export function encodeLinkQr(qr: LinkQr): string {
  const apiBase = canonicalApiBase(qr.apiBase);
  if (apiBase === undefined || apiBase !== qr.apiBase) throw new ProtocolError('QR_API_BASE_INVALID');
  if (!hospitalIdSchema.safeParse(qr.hospitalId).success) throw qrMalformed('hospital id');
  if (!(qr.secret instanceof Uint8Array) || qr.secret.length !== LINK_SECRET_BYTES)
    throw qrMalformed('secret');
  const platform = PLATFORMS.indexOf(qr.platform);
  if (platform < 0) throw qrMalformed('platform');
  const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
  return (
    LINK_QR_PREFIX +
    toBase64Url(
      concatBytes([
        Uint8Array.of(apiBase.length),
        ascii(apiBase),
        Uint8Array.of(qr.hospitalId.length),
        ascii(qr.hospitalId),
        qr.devicePublicKey.toBytes(),
        qr.secret,
        Uint8Array.of(platform),
      ]),
    )
  );
}

/** Decodes a scanned link QR strictly; QR_MALFORMED / QR_API_BASE_INVALID / QR_VERSION_UNSUPPORTED. */
export function decodeLinkQr(text: string): LinkQr {
  if (typeof text !== 'string') throw qrMalformed('not text');
  if (!text.startsWith(LINK_QR_PREFIX)) {
    if (/^CBL[0-9]+:/.test(text)) throw new ProtocolError('QR_VERSION_UNSUPPORTED');
    throw qrMalformed('prefix');
  }
  if (text.length > 400) throw qrMalformed('too long');
  const bytes = fromBase64Url(text.slice(LINK_QR_PREFIX.length));
  if (bytes === undefined) throw qrMalformed('not base64url');
  let offset = 0;
  const take = (n: number): Uint8Array => {
    if (offset + n > bytes.length) throw qrMalformed('truncated');
    const part = bytes.subarray(offset, offset + n);
    offset += n;
    return part;
  };
  const text8 = (n: number): string => String.fromCharCode(...take(n));
  const apiLength = take(1)[0]!;
  const apiBase = text8(apiLength);
  if (canonicalApiBase(apiBase) !== apiBase) throw new ProtocolError('QR_API_BASE_INVALID');
  const hospitalLength = take(1)[0]!;
  const hospitalId = text8(hospitalLength);
  if (!hospitalIdSchema.safeParse(hospitalId).success) throw qrMalformed('hospital id');
  const keyBytes = take(45).slice();
  const secret = take(LINK_SECRET_BYTES).slice();
  const platform = PLATFORMS[take(1)[0]!];
  if (platform === undefined) throw qrMalformed('platform');
  if (offset !== bytes.length) throw qrMalformed('trailing bytes');
  let devicePublicKey: PublicKey;
  try {
    devicePublicKey = importPublicKey(keyBytes);
  } catch (error) {
    throw new ProtocolError('QR_MALFORMED', 'the device key is not valid', { cause: error });
  }
  return { apiBase, hospitalId, devicePublicKey, secret, platform };
}

function qrMalformed(what: string): ProtocolError {
  return new ProtocolError('QR_MALFORMED', `the link QR is malformed (${what})`);
}

/**
 * The link's public name: base64url(SHA-256("cb/link-id/v1" ‖ secret)). The pairing function
 * accepts each linkId once (a replayed QR is LINK_REPLAYED); it reveals nothing of the secret.
 */
export function linkIdOf(secret: Uint8Array): string {
  if (!(secret instanceof Uint8Array) || secret.length !== LINK_SECRET_BYTES) {
    throw new ProtocolError('INVALID_REQUEST', 'the link secret must be 32 bytes');
  }
  return toBase64Url(sha256(concatBytes([utf8(LINK_ID_LABEL), secret])));
}

// ---- The link document ----

function fingerprintOf(publicKey: string): string | undefined {
  const bytes = fromBase64Url(publicKey);
  return bytes === undefined ? undefined : toBase64Url(sha256(bytes));
}

const linkedKeySchema = z.strictObject({
  recordId: recordIdSchema,
  wrappedKey: z
    .string()
    .length(Math.ceil((wrappedKeyLength(22) * 4) / 3))
    .regex(/^[A-Za-z0-9_-]+$/),
});

export const deviceLinkSchema = z
  .strictObject({
    type: z.literal(DEVICE_LINK_TYPE),
    linkId: sha256Schema,
    hospitalId: hospitalIdSchema,
    patientRef: patientRefSchema,
    /** The paired device that signs this document. */
    linkedBy: deviceIdSchema,
    /** Its certificate from the pairing function (device or linked), base64url signed form. */
    linkedByCertificate: signedDocumentTextSchema,
    deviceId: deviceIdSchema,
    devicePublicKey: publicKeySchema,
    platform: platformSchema,
    /** The hospital key the linking phone pinned; the new phone verifies manifests with it. */
    hospitalPublicKey: publicKeySchema,
    /** The hospital witness's Ed25519 key the linking phone pinned, when it has one. */
    witnessKey: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/)
      .optional(),
    /** This link's wrap public key (§2.4): the new phone unwraps `keys` with it. */
    wrapKey: publicKeySchema,
    keys: z.array(linkedKeySchema).max(MAX_LINK_KEYS),
    issuedAt: timestampSchema,
    /** HMAC-SHA256(secret, "cb/link-proof/v1" ‖ SHA-256(canonical JSON without linkProof)). */
    linkProof: sha256Schema,
  })
  .refine((d) => fingerprintOf(d.devicePublicKey) === d.deviceId, {
    message: 'deviceId is not the fingerprint of devicePublicKey',
    path: ['deviceId'],
  })
  .refine((d) => d.deviceId !== d.linkedBy, { message: 'a device cannot link itself', path: ['deviceId'] })
  .refine((d) => new Set(d.keys.map((k) => k.recordId)).size === d.keys.length, {
    message: 'a record appears twice',
    path: ['keys'],
  });
export type DeviceLink = z.output<typeof deviceLinkSchema>;

const LINK_CODES: DocumentErrorCodes = {
  invalid: 'LINK_INVALID',
  signature: 'LINK_INVALID',
  type: 'LINK_INVALID',
  tooLarge: 'LINK_INVALID',
};

function linkProofOf(secret: Uint8Array, document: Omit<DeviceLink, 'linkProof'>): string {
  const body = utf8(canonicalJson(document));
  return toBase64Url(hmacSha256(secret, utf8(LINK_PROOF_LABEL), sha256(body)));
}

/** The linking phone's own state for the enrolment it links from. */
export interface Linker {
  readonly deviceId: string;
  readonly keys: KeyPair;
  /** Its certificate as the pairing function returned it (base64url signed form). */
  readonly certificate: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly hospitalPublicKey: PublicKey;
  /** base64url Ed25519 key, if the enrolment pinned one. */
  readonly witnessKey?: string;
}

/** A record's content key, recovered by the linking phone, to re-wrap for the new one. */
export interface LinkRecordKey {
  readonly recordId: string;
  readonly contentKey: ContentKey;
}

/**
 * Builds and signs the link on the paired phone: every content key re-wrapped for the new key
 * under one fresh wrap key, destroyed before this returns. Returns the signed form.
 */
export function buildDeviceLink(options: {
  readonly qr: LinkQr;
  readonly linker: Linker;
  readonly records: readonly LinkRecordKey[];
  readonly now: Date;
}): { readonly document: DeviceLink; readonly signed: Uint8Array } {
  const { qr, linker } = options;
  if (qr.hospitalId !== linker.hospitalId) {
    throw new ProtocolError('LINK_INVALID', 'the link QR is for another hospital');
  }
  if (options.records.length > MAX_LINK_KEYS) throw new ProtocolError('LINK_INVALID', 'too many records');
  const wrapper = createKeyWrapper();
  try {
    const unproven: Omit<DeviceLink, 'linkProof'> = {
      type: DEVICE_LINK_TYPE,
      linkId: linkIdOf(qr.secret),
      hospitalId: linker.hospitalId,
      patientRef: linker.patientRef,
      linkedBy: linker.deviceId,
      linkedByCertificate: linker.certificate,
      deviceId: qr.devicePublicKey.fingerprint,
      devicePublicKey: qr.devicePublicKey.toBase64Url(),
      platform: qr.platform,
      hospitalPublicKey: linker.hospitalPublicKey.toBase64Url(),
      ...(linker.witnessKey === undefined ? {} : { witnessKey: linker.witnessKey }),
      wrapKey: wrapper.publicKey.toBase64Url(),
      keys: options.records.map((record) => ({
        recordId: record.recordId,
        wrappedKey: toBase64Url(
          wrapper.wrap(record.contentKey, { recordId: record.recordId, device: qr.devicePublicKey }),
        ),
      })),
      issuedAt: formatTimestamp(options.now),
    };
    const document: DeviceLink = { ...unproven, linkProof: linkProofOf(qr.secret, unproven) };
    const signed = signDocument(deviceLinkSchema, document, linker.keys.privateKey, { codes: LINK_CODES });
    return { document, signed };
  } finally {
    wrapper.destroy();
  }
}

/** The signer's public key, read from the certificate the link carries (either kind). */
function linkerKeyOf(link: DeviceLink): { certificate: LinkerCertificate; publicKey: PublicKey } {
  const signed = fromBase64Url(link.linkedByCertificate);
  if (signed === undefined) throw new ProtocolError('LINK_INVALID', 'the signer certificate is malformed');
  let certificate: LinkerCertificate;
  let publicKey: PublicKey;
  try {
    certificate = readLinkerCertificate(signed);
    publicKey = publicKeyFrom(certificate.devicePublicKey);
  } catch (error) {
    // A broken certificate inside the link is a broken link, whatever part of it broke.
    throw new ProtocolError('LINK_INVALID', 'the signer certificate is malformed', { cause: error });
  }
  if (certificate.deviceId !== link.linkedBy) {
    throw new ProtocolError('LINK_INVALID', 'the signer certificate names another device');
  }
  return { certificate, publicKey };
}

/** A link document's fields without its signature checked (to learn whom to check it against). */
export function readDeviceLinkUnverified(signed: Uint8Array): DeviceLink {
  return readDocumentUnverified(signed, DEVICE_LINK_TYPE, deviceLinkSchema, { codes: LINK_CODES });
}

/** What the pairing function knows of the signing device, from its own store. */
export interface LinkerState {
  readonly deviceId: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly status: 'active' | 'revoked';
  readonly expiresAt: Date;
  /** The certificate it issued the device (base64url), which names the device's key. */
  readonly certificate: string;
}

/**
 * The pairing function's check (and anyone's who knows the signer's state): the signature is by
 * the certificate's key of `linker`, a current device of the same hospital and patient, the
 * document is fresh, and its linkId has not been used. Throws LINK_INVALID, DEVICE_REVOKED,
 * REQUEST_EXPIRED or LINK_REPLAYED. Cannot check the link proof (only the new phone can).
 */
export function verifyDeviceLink(
  signed: Uint8Array,
  options: {
    readonly linker: LinkerState | undefined;
    readonly now: Date;
    readonly usedLinkIds?: ReadonlySet<string>;
  },
): DeviceLink {
  const claimed = readDeviceLinkUnverified(signed);
  const linker = options.linker;
  if (!linker || linker.deviceId !== claimed.linkedBy) {
    throw new ProtocolError('LINK_INVALID', 'the signer is not a paired device');
  }
  if (claimed.linkedByCertificate !== linker.certificate) {
    throw new ProtocolError('LINK_INVALID', 'the signer certificate is not the one issued');
  }
  const { publicKey } = linkerKeyOf(claimed);
  const link = verifyDocument(signed, publicKey, DEVICE_LINK_TYPE, deviceLinkSchema, { codes: LINK_CODES });
  if (linker.status !== 'active' || linker.expiresAt <= options.now)
    throw new ProtocolError('DEVICE_REVOKED');
  if (link.hospitalId !== linker.hospitalId || link.patientRef !== linker.patientRef) {
    throw new ProtocolError('LINK_INVALID', 'the link is for another patient');
  }
  if (Math.abs(options.now.getTime() - Date.parse(link.issuedAt)) > LINK_SKEW_SECONDS * 1000) {
    throw new ProtocolError('REQUEST_EXPIRED');
  }
  if (options.usedLinkIds?.has(link.linkId)) throw new ProtocolError('LINK_REPLAYED');
  return link;
}

/**
 * The new phone's check of the link it was handed: it is for its own key and hospital, signed
 * by the key in the signer's certificate, and its proof verifies under the QR secret, so every
 * key in it (the hospital's, the wrap key) is what the phone that scanned the QR put there.
 * Throws LINK_INVALID or LINK_PROOF_INVALID.
 */
export function acceptDeviceLink(signed: Uint8Array, invitation: LinkQr): DeviceLink {
  const claimed = readDeviceLinkUnverified(signed);
  const { publicKey } = linkerKeyOf(claimed);
  const link = verifyDocument(signed, publicKey, DEVICE_LINK_TYPE, deviceLinkSchema, { codes: LINK_CODES });
  if (
    link.deviceId !== invitation.devicePublicKey.fingerprint ||
    link.devicePublicKey !== invitation.devicePublicKey.toBase64Url() ||
    link.hospitalId !== invitation.hospitalId
  ) {
    throw new ProtocolError('LINK_INVALID', 'the link is for another device');
  }
  const { linkProof, ...unproven } = link;
  const expected = fromBase64Url(linkProofOf(invitation.secret, unproven))!;
  const given = fromBase64Url(linkProof);
  if (given === undefined || !equalBytes(given, expected) || link.linkId !== linkIdOf(invitation.secret)) {
    throw new ProtocolError('LINK_PROOF_INVALID');
  }
  return link;
}

// ---- The linked device's certificate ----

export const linkedDeviceCertificateSchema = z
  .strictObject({
    type: z.literal(LINKED_DEVICE_CERTIFICATE_TYPE),
    deviceId: deviceIdSchema,
    devicePublicKey: publicKeySchema,
    hospitalId: hospitalIdSchema,
    patientRef: patientRefSchema,
    /** The device whose signature the link carries. */
    linkedBy: deviceIdSchema,
    linkId: sha256Schema,
    /** base64url SHA-256 of the link's signed form. */
    linkSha256: sha256Schema,
    issuedAt: timestampSchema,
    expiresAt: timestampSchema,
  })
  .refine((c) => fingerprintOf(c.devicePublicKey) === c.deviceId, {
    message: 'deviceId is not the fingerprint of devicePublicKey',
    path: ['deviceId'],
  })
  .refine((c) => Date.parse(c.issuedAt) < Date.parse(c.expiresAt), {
    message: 'expires before issued',
    path: ['expiresAt'],
  });
export type LinkedDeviceCertificate = z.output<typeof linkedDeviceCertificateSchema>;

/** A certificate of either kind: what a device's stored certificate may be. */
export type LinkerCertificate = DeviceCertificate | LinkedDeviceCertificate;

const CERTIFICATE_CODES: DocumentErrorCodes = {
  invalid: 'CERTIFICATE_INVALID',
  signature: 'CERTIFICATE_INVALID',
  type: 'CERTIFICATE_INVALID',
  tooLarge: 'CERTIFICATE_INVALID',
};

/** The certificate the pairing function issues for a link it accepted. */
export function linkedCertificateFor(
  link: DeviceLink,
  signedLink: Uint8Array,
  validity: { readonly issuedAt: Date; readonly expiresAt: Date },
): LinkedDeviceCertificate {
  return {
    type: LINKED_DEVICE_CERTIFICATE_TYPE,
    deviceId: link.deviceId,
    devicePublicKey: link.devicePublicKey,
    hospitalId: link.hospitalId,
    patientRef: link.patientRef,
    linkedBy: link.linkedBy,
    linkId: link.linkId,
    linkSha256: toBase64Url(sha256(signedLink)),
    issuedAt: formatTimestamp(validity.issuedAt),
    expiresAt: formatTimestamp(validity.expiresAt),
  };
}

export function signLinkedDeviceCertificate(
  certificate: LinkedDeviceCertificate,
  pairingKey: PrivateKey,
): Uint8Array {
  return signDocument(linkedDeviceCertificateSchema, certificate, pairingKey, { codes: CERTIFICATE_CODES });
}

/** Either kind of certificate, without its signature checked (the pairing function's own store). */
export function readLinkerCertificate(signed: Uint8Array): LinkerCertificate {
  const message = signedMessageUnverified(signed, { codes: CERTIFICATE_CODES });
  const linked = new TextDecoder().decode(message).includes(`"type":"${LINKED_DEVICE_CERTIFICATE_TYPE}"`);
  return linked
    ? readDocumentUnverified(signed, LINKED_DEVICE_CERTIFICATE_TYPE, linkedDeviceCertificateSchema, {
        codes: CERTIFICATE_CODES,
      })
    : readDocumentUnverified(signed, DEVICE_CERTIFICATE_TYPE, deviceCertificateSchema, {
        codes: CERTIFICATE_CODES,
      });
}

/** Verifies either kind of certificate with the pairing function's key; valid at `now`. */
export function verifyAnyDeviceCertificate(
  signed: Uint8Array,
  pairingPublicKey: PublicKey,
  now: Date,
): LinkerCertificate {
  if (readLinkerCertificate(signed).type === DEVICE_CERTIFICATE_TYPE) {
    return verifyDeviceCertificate(signed, pairingPublicKey, now);
  }
  const certificate = verifyDocument(
    signed,
    pairingPublicKey,
    LINKED_DEVICE_CERTIFICATE_TYPE,
    linkedDeviceCertificateSchema,
    { codes: CERTIFICATE_CODES },
  );
  if (now.getTime() < Date.parse(certificate.issuedAt) - LINK_SKEW_SECONDS * 1000) {
    throw new ProtocolError('CERTIFICATE_INVALID', 'the certificate is not valid yet');
  }
  if (now.getTime() >= Date.parse(certificate.expiresAt)) throw new ProtocolError('CERTIFICATE_EXPIRED');
  return certificate;
}

/**
 * What the connector and the patient's other devices check of a linked device: its certificate
 * verifies with the pairing key and names exactly this link; the link is signed by the key of the
 * signer's certificate, which the pairing key also vouches for, for the same hospital and
 * patient. The caller still decides whether it trusts the signer itself (the connector: a device
 * its journal accepted; a phone: a device it lists). Throws CERTIFICATE_* or LINK_INVALID.
 */
export function verifyLinkedDevice(
  entry: { readonly certificate: Uint8Array; readonly link: Uint8Array },
  pairingPublicKey: PublicKey,
  now: Date,
): { certificate: LinkedDeviceCertificate; link: DeviceLink; linker: LinkerCertificate } {
  const certificate = verifyAnyDeviceCertificate(entry.certificate, pairingPublicKey, now);
  if (certificate.type !== LINKED_DEVICE_CERTIFICATE_TYPE) {
    throw new ProtocolError('CERTIFICATE_INVALID', 'not a linked device certificate');
  }
  if (!equalBytes(fromBase64Url(certificate.linkSha256)!, sha256(entry.link))) {
    throw new ProtocolError('LINK_INVALID', 'the certificate names another link');
  }
  const claimed = readDeviceLinkUnverified(entry.link);
  const { publicKey } = linkerKeyOf(claimed);
  const link = verifyDocument(entry.link, publicKey, DEVICE_LINK_TYPE, deviceLinkSchema, {
    codes: LINK_CODES,
  });
  const linker = verifyAnyDeviceCertificate(fromBase64Url(link.linkedByCertificate)!, pairingPublicKey, now);
  if (
    link.deviceId !== certificate.deviceId ||
    link.linkedBy !== certificate.linkedBy ||
    link.hospitalId !== certificate.hospitalId ||
    link.patientRef !== certificate.patientRef ||
    linker.hospitalId !== link.hospitalId ||
    linker.patientRef !== link.patientRef
  ) {
    throw new ProtocolError('LINK_INVALID', 'the link, its certificate and its signer disagree');
  }
  return { certificate, link, linker };
}

// ---- Content keys ----

/** The new phone's key for `recordId` from its link (KEY_UNWRAP_FAILED, KEY_BINDING_MISMATCH). */
export function contentKeyFromLink(link: DeviceLink, recordId: string, device: KeyPair): ContentKey {
  const entry = link.keys.find((key) => key.recordId === recordId);
  if (!entry) throw new ProtocolError('NOT_A_RECIPIENT');
  const wrapped = fromBase64Url(entry.wrappedKey);
  if (wrapped === undefined) throw new ProtocolError('KEY_UNWRAP_FAILED');
  try {
    return unwrapContentKey(wrapped, { recordId, device, wrapKey: publicKeyFrom(link.wrapKey) });
  } catch (error) {
    throw toProtocolError(error);
  }
}

/**
 * A content key the linking phone can open: from the manifest if it is a recipient, otherwise
 * from its own link (a linked phone may link another in turn).
 */
export function recoverContentKey(
  manifest: UploadManifest,
  device: KeyPair,
  ownLink?: DeviceLink,
): ContentKey {
  const listed = manifest.recipients.some((r) => r.deviceId === device.publicKey.fingerprint);
  if (!listed && ownLink) return contentKeyFromLink(ownLink, manifest.recordId, device);
  try {
    return unwrapContentKey(wrappedKeyBytes(recipientFor(manifest, device.publicKey.fingerprint)), {
      recordId: manifest.recordId,
      device,
      wrapKey: publicKeyFrom(manifest.wrapKey, 'MANIFEST_INVALID'),
    });
  } catch (error) {
    throw toProtocolError(error);
  }
}

export interface OpenWithLinkOptions {
  readonly device: KeyPair;
  /** The hospital key: pinned from the invitation QR, or from an accepted link. */
  readonly hospitalPublicKey: PublicKey;
  readonly hospitalId: string;
  readonly recordId: string;
  /** The device's link, if it has one: used when the manifest does not name the device. */
  readonly link?: DeviceLink;
  readonly limits?: ContainerLimits;
}

/**
 * Reads a container's manifest and verifies it with the hospital key (for the linking phone,
 * which needs only the key, not the content), then closes the download.
 */
export async function readVerifiedManifest(
  source: ByteSource,
  options: VerifiedRecordOptions,
): Promise<UploadManifest> {
  let container: UploadContainer | undefined;
  try {
    container = await readUploadContainer(source, options.limits);
    return verifiedManifestOf(container, options);
  } catch (error) {
    throw toProtocolError(error);
  } finally {
    await container?.close().catch(() => undefined);
  }
}

/**
 * openRecord (§7) for a device that may hold its key through a link: the content key from the
 * manifest or the link (which must be for the manifest's patient).
 */
export async function openRecordWithLink(
  source: ByteSource,
  options: OpenWithLinkOptions,
): Promise<OpenedRecord> {
  return openVerifiedRecord(source, options, (manifest) => {
    if (options.link && options.link.patientRef !== manifest.patientRef) {
      throw new ProtocolError('MANIFEST_INVALID', 'the manifest is for another patient');
    }
    return recoverContentKey(manifest, options.device, options.link);
  });
}

// ---- Over the API ----

/** POST /pairing/v1/links body: the link, signed by the device that makes the call. */
export const linkBodySchema = z.strictObject({ link: signedDocumentTextSchema });
/** 201: the new device's enrolment. */
export const linkResponseSchema = z.strictObject({
  deviceId: deviceIdSchema,
  certificate: signedDocumentTextSchema,
  expiresAt: timestampSchema,
});
/** The patient's linked devices, each with its certificate and the link that vouches for it. */
export const deviceLinksResponseSchema = z.strictObject({
  links: z
    .array(
      z.strictObject({
        deviceId: deviceIdSchema,
        certificate: signedDocumentTextSchema,
        link: signedDocumentTextSchema,
      }),
    )
    .max(64),
});
