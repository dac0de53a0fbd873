// Device linking on the phones (docs/PROTOCOL.md §17):
//   new phone:      showLinkInvitation → (the QR is scanned) → receiveLink → keepLinkedDevice
//   paired phone:   approveLink(linkingDeviceOf(enrolment), scanned QR text)
// After that a linked phone syncs like any other: syncRecords opens records sent before it
// existed with the keys its link re-wrapped for it. The QR secret and private keys never leave
// the phone that made them; the cloud sees only the signed link (public keys, signatures,
// opaque wraps).
import {
  generateKeyPair,
  importPublicKey,
  type KeyPair,
  type PublicKey,
} from '../shared/core/crypto/index.ts';
import {
  acceptDeviceLink,
  buildDeviceLink,
  decodeLinkQr,
  deviceKeyId,
  deviceLinksResponseSchema,
  encodeLinkQr,
  fromBase64Url,
  LINKED_DEVICE_CERTIFICATE_TYPE,
  linkResponseSchema,
  MAX_LINK_KEYS,
  newLinkSecret,
  openRecordWithLink,
  ProtocolError,
  readLinkerCertificate,
  readVerifiedManifest,
  recoverContentKey,
  sha256,
  toBase64Url,
  type DeviceLink,
  type LinkPlatform,
  type LinkQr,
  type LinkRecordKey,
  type OpenedRecord,
} from '../shared/core/protocol/index.ts';
import type { z } from 'zod';
import { ApiError, createApiClient, responseBytes, type ApiClient } from './api-client.ts';
import { keptLink, type ApiClientFactory, type DeviceHome, type Enrolment } from './home.ts';
import { listRecordIds } from './sync.ts';

/** What linking needs of a paired phone's enrolment (the SDK's Enrolment holds all of it). */
export interface LinkingDevice {
  readonly apiBase: string;
  readonly hospitalId: string;
  readonly deviceId: string;
  readonly keys: KeyPair;
  /** The certificate the pairing function returned (base64url; paired or linked). */
  readonly certificate: string;
  /** Pinned from the invitation QR (or from this phone's own accepted link). */
  readonly hospitalPublicKey: PublicKey;
  /** The witness key pinned from the QR (base64url), if any: handed on to the new phone. */
  readonly witnessKey?: string;
  /** This phone's own link (base64url signed form) if it was itself linked: history keys come from it. */
  readonly link?: string;
}

/** The new phone's side of a link in progress: keep it in memory until receiveLink returns. */
export interface LinkInvitation {
  /** The text to show as a QR code ("CBL1:…"). */
  readonly qr: string;
  readonly apiBase: string;
  readonly hospitalId: string;
  readonly deviceId: string;
  readonly keys: KeyPair;
  readonly platform: LinkPlatform;
  /** The one-time secret in the QR; zeroed once a link has been accepted. */
  readonly secret: Uint8Array;
}

/** The new phone, linked: a LinkingDevice with its link (so it may link another in turn). */
export interface LinkedDevice extends LinkingDevice {
  readonly link: string;
  readonly patientRef: string;
  readonly expiresAt?: string;
}

export interface ApprovedLink {
  readonly deviceId: string;
  readonly certificate: string;
  readonly expiresAt: string;
  /** Records whose keys the link carries. */
  readonly records: readonly string[];
  /** Records this phone could not open (so could not hand on), by code. */
  readonly skipped: readonly { readonly recordId: string; readonly code: string }[];
}

type Signed = Pick<LinkingDevice, 'apiBase' | 'deviceId' | 'keys'>;

function clientOf(device: Signed, clients: ApiClientFactory): ApiClient {
  return clients({
    apiBase: device.apiBase,
    signer: { keyId: deviceKeyId(device.deviceId), privateKey: device.keys.privateKey },
  });
}

/**
 * New phone, step 1: a fresh key pair for this hospital and a one-time secret, shown as a link
 * QR. Nothing is sent anywhere yet.
 */
export function showLinkInvitation(options: {
  readonly apiBase: string;
  readonly hospitalId: string;
  readonly platform?: LinkPlatform;
}): LinkInvitation {
  const keys = generateKeyPair();
  const secret = newLinkSecret();
  const platform = options.platform ?? 'other';
  const qr = encodeLinkQr({
    apiBase: options.apiBase,
    hospitalId: options.hospitalId,
    devicePublicKey: keys.publicKey,
    secret,
    platform,
  });
  return {
    qr,
    apiBase: options.apiBase,
    hospitalId: options.hospitalId,
    deviceId: keys.publicKey.fingerprint,
    keys,
    platform,
    secret,
  };
}

/**
 * Paired phone: scans the link QR, recovers the content key of each live record it can open
 * (reading only each container's manifest), re-wraps them for the new key, signs the link and
 * hands it to the pairing function. At most MAX_LINK_KEYS records, the newest.
 */
export async function approveLink(
  device: LinkingDevice,
  qrText: string,
  clients: ApiClientFactory = createApiClient,
): Promise<ApprovedLink> {
  const api = clientOf(device, clients);
  const qr: LinkQr = decodeLinkQr(qrText);
  if (qr.apiBase !== device.apiBase) throw new ProtocolError('QR_API_BASE_INVALID');
  if (qr.hospitalId !== device.hospitalId)
    throw new ProtocolError('LINK_INVALID', 'the QR is for another hospital');
  const certificateBytes = fromBase64Url(device.certificate);
  if (certificateBytes === undefined) throw new ProtocolError('CERTIFICATE_INVALID');
  const { patientRef } = readLinkerCertificate(certificateBytes);
  const ownLink: DeviceLink | undefined = device.link === undefined ? undefined : keptLink(device.link);

  const recordIds = await listRecordIds(api);

  const records: LinkRecordKey[] = [];
  const skipped: { recordId: string; code: string }[] = [];
  for (const recordId of recordIds.slice(-MAX_LINK_KEYS)) {
    try {
      const response = await api.raw({ method: 'GET', target: `/records/v1/records/${recordId}/content` });
      const manifest = await readVerifiedManifest(responseBytes(response), {
        hospitalPublicKey: device.hospitalPublicKey,
        hospitalId: device.hospitalId,
        recordId,
      });
      records.push({ recordId, contentKey: recoverContentKey(manifest, device.keys, ownLink) });
    } catch (error) {
      if (error instanceof ApiError && error.code !== 'NOT_FOUND') throw error;
      skipped.push({
        recordId,
        code: error instanceof ProtocolError || error instanceof ApiError ? error.code : 'INTERNAL_ERROR',
      });
    }
  }

  const { signed } = buildDeviceLink({
    qr,
    linker: {
      deviceId: device.deviceId,
      keys: device.keys,
      certificate: device.certificate,
      hospitalId: device.hospitalId,
      patientRef,
      hospitalPublicKey: device.hospitalPublicKey,
      ...(device.witnessKey === undefined ? {} : { witnessKey: device.witnessKey }),
    },
    records,
    now: new Date(),
  });
  const enrolled = await api.call(
    { method: 'POST', target: '/pairing/v1/links', json: { link: toBase64Url(signed) } },
    linkResponseSchema,
  );
  return { ...enrolled, records: records.map((r) => r.recordId), skipped };
}

/**
 * New phone, step 2: waits until it is enrolled (its key is unknown until the paired phone has
 * approved), fetches its link and accepts it only if the proof under its own QR secret verifies.
 */
export async function receiveLink(
  invitation: LinkInvitation,
  options: {
    readonly waitMs?: number;
    readonly pollMs?: number;
    /** The app's FCM token, registered once linked (a linked device starts without one). */
    readonly fcmToken?: string;
    readonly clients?: ApiClientFactory;
  } = {},
): Promise<LinkedDevice> {
  const deadline = Date.now() + (options.waitMs ?? 120_000);
  const api = clientOf(invitation, options.clients ?? createApiClient);
  for (;;) {
    let answer: z.output<typeof deviceLinksResponseSchema>;
    try {
      answer = await api.call(
        { method: 'GET', target: '/records/v1/devices/links' },
        deviceLinksResponseSchema,
      );
    } catch (error) {
      if (error instanceof ApiError && error.code === 'UNKNOWN_KEY' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
        continue;
      }
      throw error;
    }
    const own = answer.links.find((entry) => entry.deviceId === invitation.deviceId);
    if (!own) throw new ProtocolError('LINK_INVALID', 'enrolled, but not by a link');
    const signedLink = fromBase64Url(own.link) ?? new Uint8Array();
    const link = acceptDeviceLink(signedLink, {
      apiBase: invitation.apiBase,
      hospitalId: invitation.hospitalId,
      devicePublicKey: invitation.keys.publicKey,
      secret: invitation.secret,
      platform: invitation.platform,
    });
    const certificate = readLinkerCertificate(fromBase64Url(own.certificate) ?? new Uint8Array());
    if (
      certificate.type !== LINKED_DEVICE_CERTIFICATE_TYPE ||
      certificate.deviceId !== invitation.deviceId ||
      certificate.linkSha256 !== toBase64Url(sha256(signedLink))
    ) {
      throw new ProtocolError('CERTIFICATE_INVALID', 'the certificate does not name this link');
    }
    invitation.secret.fill(0); // one-time: spent
    if (options.fcmToken !== undefined) {
      await api.raw({
        method: 'PUT',
        target: '/records/v1/devices/self/push-token',
        json: { fcmToken: options.fcmToken },
      });
    }
    return {
      apiBase: invitation.apiBase,
      hospitalId: invitation.hospitalId,
      deviceId: invitation.deviceId,
      keys: invitation.keys,
      certificate: own.certificate,
      hospitalPublicKey: importPublicKey(link.hospitalPublicKey),
      ...(link.witnessKey === undefined ? {} : { witnessKey: link.witnessKey }),
      link: own.link,
      patientRef: link.patientRef,
      expiresAt: certificate.expiresAt,
    };
  }
}

/**
 * Downloads and opens one record on a linked phone: with its key from the manifest if the record
 * was sent to it, else from its link (history sent before it existed).
 */
export async function openLinkedRecord(
  device: LinkedDevice,
  recordId: string,
  clients: ApiClientFactory = createApiClient,
): Promise<OpenedRecord> {
  const response = await clientOf(device, clients).raw({
    method: 'GET',
    target: `/records/v1/records/${recordId}/content`,
  });
  return openRecordWithLink(responseBytes(response), {
    device: device.keys,
    hospitalPublicKey: device.hospitalPublicKey,
    hospitalId: device.hospitalId,
    recordId,
    link: keptLink(device.link),
  });
}

/** What approveLink needs, from a paired (or itself linked) phone's enrolment. */
export function linkingDeviceOf(enrolment: Enrolment): LinkingDevice {
  const { data } = enrolment;
  return {
    apiBase: data.apiBase,
    hospitalId: data.hospitalId,
    deviceId: data.deviceId,
    keys: enrolment.keys,
    certificate: data.certificate,
    hospitalPublicKey: enrolment.hospitalKey,
    ...(data.witnessKey === undefined ? {} : { witnessKey: data.witnessKey }),
    ...(data.link === undefined ? {} : { link: data.link }),
  };
}

/**
 * Keeps a linked phone's enrolment in its DeviceHome, beside the records function's key (which
 * erasure receipts verify with), so that it syncs, lists and erases like a paired one.
 */
export async function keepLinkedDevice(
  home: DeviceHome,
  linked: LinkedDevice,
  options: { readonly fcmToken: string; readonly now?: Date },
): Promise<void> {
  await home.enrol(
    {
      apiBase: linked.apiBase,
      hospitalId: linked.hospitalId,
      hospitalPublicKey: linked.hospitalPublicKey.toBase64Url(),
      ...(linked.witnessKey === undefined ? {} : { witnessKey: linked.witnessKey }),
      deviceId: linked.deviceId,
      certificate: linked.certificate,
      link: linked.link,
      fcmToken: options.fcmToken,
      pairedAt: (options.now ?? new Date()).toISOString(),
    },
    linked.keys,
  );
}
