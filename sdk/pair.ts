// Pairing from a scanned QR code (docs/PROTOCOL.md §10.2): decode strictly, generate a fresh
// key pair, prove the binding and possession of the key, and keep the certificate. The token
// and the binding secret are used once and not stored.
import { generateKeyPair } from '../shared/core/crypto/index.ts';
import {
  bindingProofText,
  decodeInvitationQr,
  formatTimestamp,
  PAIR_REQUEST_TYPE,
  pairResponseSchema,
  signPairRequest,
  toBase64Url,
  tokenDigest,
} from '../shared/core/protocol/index.ts';
import { withTransientRetries } from './api-client.ts';
import type { DeviceHome } from './home.ts';

export interface PairResult {
  readonly hospitalId: string;
  readonly apiHost: string;
  readonly deviceId: string;
  readonly expiresAt: string;
}

export async function pairFromQr(
  home: DeviceHome,
  qrText: string,
  options: {
    platform: 'ios' | 'android' | 'other';
    /** The app's FCM registration token (the FCM SDK on a phone gives it). */
    fcmToken: string;
    now?: Date;
    /**
     * Accept a development stack's plain-http QR (docs/SANDBOX.md). Only a development build
     * of an app may set it; a production device refuses such a QR.
     */
    allowDevelopmentStack?: boolean;
  },
): Promise<PairResult> {
  const now = options.now ?? new Date();
  const qr = decodeInvitationQr(qrText, { allowDevelopmentStack: options.allowDevelopmentStack === true });
  const keys = generateKeyPair();
  const fcmToken = options.fcmToken;
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
      issuedAt: formatTimestamp(now),
    },
    keys.privateKey,
  );
  qr.bindingSecret.fill(0);
  // The same signed request again on a transient failure: the service answers the device that
  // already used the invitation with its pairing, so a lost answer does not lose the invitation.
  const paired = await withTransientRetries(() =>
    home.apiClient({ apiBase: qr.apiBase }).call(
      {
        method: 'POST',
        target: '/pairing/v1/pair',
        json: { token: qr.token, pairRequest: toBase64Url(signed) },
      },
      pairResponseSchema,
    ),
  );
  await home.enrol(
    {
      apiBase: qr.apiBase,
      hospitalId: qr.hospitalId,
      hospitalPublicKey: qr.hospitalPublicKey.toBase64Url(),
      witnessKey: toBase64Url(qr.witnessKey),
      deviceId: paired.deviceId,
      certificate: paired.certificate,
      fcmToken,
      pairedAt: now.toISOString(),
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
