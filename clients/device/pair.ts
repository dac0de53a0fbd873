// Pairing from a scanned QR code (docs/PROTOCOL.md §10.2): decode strictly, generate a fresh
// key pair, prove the binding and possession of the key, and keep the certificate. The token
// and the binding secret are used once and not stored.
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '../../shared/core/crypto/index.ts';
import {
  bindingProofText,
  decodeInvitationQr,
  formatTimestamp,
  PAIR_REQUEST_TYPE,
  pairResponseSchema,
  signingKeyResponseSchema,
  signPairRequest,
  toBase64Url,
  tokenDigest,
} from '../../shared/core/protocol/index.ts';
import { createApiClient, withTransientRetries } from '../lib/api-client.ts';
import type { DeviceHome } from './home.ts';

export interface PairResult {
  readonly hospitalId: string;
  readonly apiHost: string;
  readonly deviceId: string;
  readonly expiresAt: string;
}

/**
 * A push token. On a phone it comes from the FCM SDK; this device makes one up, and the local
 * FCM recorder delivers to whatever token the functions send to.
 */
export function localPushToken(): string {
  return `local-${toBase64Url(new Uint8Array(randomBytes(24)))}`;
}

export async function pairFromQr(
  home: DeviceHome,
  qrText: string,
  options: { platform: 'ios' | 'android' | 'other'; now: Date },
): Promise<PairResult> {
  const qr = decodeInvitationQr(qrText);
  const keys = generateKeyPair();
  const fcmToken = localPushToken();
  const signed = signPairRequest(
    {
      type: PAIR_REQUEST_TYPE,
      invitationId: qr.invitationId,
      tokenSha256: tokenDigest(qr.token),
      devicePublicKey: keys.publicKey.toBase64Url(),
      deviceId: keys.publicKey.fingerprint,
      bindingProof: bindingProofText(qr.bindingSecret, qr.invitationId, keys.publicKey),
      fcmToken,
      platform: options.platform,
      issuedAt: formatTimestamp(options.now),
    },
    keys.privateKey,
  );
  qr.bindingSecret.fill(0);
  // The same signed request again on a transient failure: the service answers the device that
  // already used the invitation with its pairing, so a lost answer does not lose the invitation.
  const paired = await withTransientRetries(() =>
    createApiClient({ apiBase: qr.apiBase }).call(
      {
        method: 'POST',
        target: '/pairing/v1/pair',
        json: { token: qr.token, pairRequest: toBase64Url(signed) },
      },
      pairResponseSchema,
    ),
  );
  const signingKey = await createApiClient({ apiBase: qr.apiBase }).call(
    { method: 'GET', target: '/records/v1/signing-key' },
    signingKeyResponseSchema,
  );
  await home.create(
    {
      apiBase: qr.apiBase,
      recordsPublicKey: signingKey.publicKey,
      hospitalId: qr.hospitalId,
      hospitalPublicKey: qr.hospitalPublicKey.toBase64Url(),
      witnessKey: toBase64Url(qr.witnessKey),
      deviceId: paired.deviceId,
      certificate: paired.certificate,
      fcmToken,
      pairedAt: options.now.toISOString(),
    },
    keys,
  );
  return {
    hospitalId: qr.hospitalId,
    apiHost: new URL(qr.apiBase).host,
    deviceId: paired.deviceId,
    expiresAt: paired.expiresAt,
  };
}
