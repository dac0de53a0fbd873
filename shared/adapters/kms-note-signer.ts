// The platform's audit-log key as a signed-note signer. The Ed25519 private key lives in Cloud
// KMS (EC_SIGN_ED25519, the sequencer's own key in infra/catalog.json) and never leaves it:
// each checkpoint costs one AsymmetricSign over the note text. CRC32C is checked both ways, as
// for the functions' Decrypt, and every signature is verified against the published public key
// before it is used, so a corrupted answer can never reach a checkpoint.
import { createPublicKey } from 'node:crypto';
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import { crc32c } from '../core/checksums/crc32c.ts';
import {
  computeKeyId,
  ed25519VerifyKey,
  ed25519Verify,
  formatVerifierKey,
  SIGNATURE_TYPE_ED25519,
  type NoteSigner,
} from '../core/tlog/index.ts';
import { int64 } from './function-keys.ts';

export type KmsSigning = Pick<KeyManagementServiceClient, 'asymmetricSign' | 'getPublicKey'>;

export interface KmsNoteSigner extends NoteSigner {
  readonly publicKey: Uint8Array;
  /** `<name>+<id>+<base64>`: what witnesses, phones and monitors configure to verify with. */
  readonly verifierKey: string;
}

/** The raw 32-byte Ed25519 public key of a KMS key version. */
export async function kmsEd25519PublicKey(kms: KmsSigning, keyVersionName: string): Promise<Uint8Array> {
  const [response] = await kms.getPublicKey({ name: keyVersionName });
  if (response.algorithm !== 'EC_SIGN_ED25519' || typeof response.pem !== 'string') {
    throw new Error('the audit-log key is not an EC_SIGN_ED25519 key');
  }
  if (
    int64(response.pemCrc32c as { value?: unknown } | null) !== crc32c(new TextEncoder().encode(response.pem))
  ) {
    throw new Error('the audit-log public key failed its CRC32C check');
  }
  const jwk = createPublicKey(response.pem).export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new Error('the audit-log key is not Ed25519');
  return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
}

export async function kmsNoteSigner(
  kms: KmsSigning,
  keyVersionName: string,
  name: string,
): Promise<KmsNoteSigner> {
  const publicKey = await kmsEd25519PublicKey(kms, keyVersionName);
  const verifyKey = ed25519VerifyKey(publicKey);
  return {
    name,
    keyId: computeKeyId(name, SIGNATURE_TYPE_ED25519, publicKey),
    publicKey,
    verifierKey: formatVerifierKey(name, SIGNATURE_TYPE_ED25519, publicKey),
    async sign(message: Uint8Array) {
      const [response] = await kms.asymmetricSign({
        name: keyVersionName,
        data: message,
        dataCrc32c: { value: crc32c(message) },
      });
      const signature = response.signature ? new Uint8Array(response.signature as Uint8Array) : undefined;
      if (
        !signature ||
        response.verifiedDataCrc32c !== true ||
        int64(response.signatureCrc32c as { value?: unknown } | null) !== crc32c(signature) ||
        !ed25519Verify(verifyKey, message, signature)
      ) {
        throw new Error('Cloud KMS returned no valid signature for the checkpoint');
      }
      return signature;
    },
  };
}
