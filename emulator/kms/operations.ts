// The cryptographic methods: Encrypt, Decrypt, AsymmetricSign, GetPublicKey, MacSign,
// MacVerify. Every request-side *_crc32c that is set is checked before any work, and the
// response carries the checksums and verified_* flags the real service returns.
import { crc32cValue, verifyCrc32c, type Int64Value } from './crc.ts';
import { authorize, type CallContext } from './context.ts';
import { isEcAlgorithm, isMacAlgorithm } from './crypto/algorithms.ts';
import { ED25519_ALGORITHM, ed25519Sign } from './crypto/ed25519.ts';
import { EC_ALGORITHMS, ecPublicKey, ecSignDigest } from './crypto/ecdsa.ts';
import { macSign as hmacSign, macVerify as hmacVerify } from './crypto/mac.ts';
import {
  ciphertextVersion,
  decryptSymmetric,
  encryptSymmetric,
  SYMMETRIC_OVERHEAD,
} from './crypto/symmetric.ts';
import { failedPrecondition, invalidArgument } from './errors.ts';
import {
  isVersionName,
  parseCryptoKey,
  parseCryptoKeyOrVersion,
  parseVersion,
  versionName,
} from './names.ts';
import { material, requireCryptoKey, requireEnabled, requirePurpose, requireVersion } from './resources.ts';

/** Cloud KMS's limit for plaintext, additional authenticated data and MAC data. */
export const MAX_DATA_BYTES = 64 * 1024;
const MAX_CIPHERTEXT_BYTES = MAX_DATA_BYTES + SYMMETRIC_OVERHEAD;
const DECRYPTION_FAILED = "Decryption failed: verify that 'name' refers to the correct CryptoKey.";

function limit(data: Buffer, max: number, field: string): void {
  if (data.length > max)
    throw invalidArgument(`The field '${field}' is ${data.length} bytes; the limit is ${max}.`);
}

export function encrypt(
  ctx: CallContext,
  req: {
    name: string;
    plaintext: Buffer;
    additionalAuthenticatedData: Buffer;
    plaintextCrc32c: Int64Value;
    additionalAuthenticatedDataCrc32c: Int64Value;
  },
) {
  const target = parseCryptoKeyOrVersion(req.name, 'name');
  if (req.plaintext.length === 0) throw invalidArgument("The required field 'plaintext' is empty.");
  limit(req.plaintext, MAX_DATA_BYTES, 'plaintext');
  limit(req.additionalAuthenticatedData, MAX_DATA_BYTES, 'additional_authenticated_data');
  const verifiedPlaintext = verifyCrc32c(req.plaintextCrc32c, req.plaintext, 'plaintext_crc32c', 'plaintext');
  const verifiedAad = verifyCrc32c(
    req.additionalAuthenticatedDataCrc32c,
    req.additionalAuthenticatedData,
    'additional_authenticated_data_crc32c',
    'additional_authenticated_data',
  );
  authorize(ctx, 'cloudkms.cryptoKeyVersions.useToEncrypt', target.name);

  const key = requireCryptoKey(ctx.store, isVersionName(target) ? target.cryptoKey : target.name);
  requirePurpose(key, 'ENCRYPT_DECRYPT');
  const version = isVersionName(target)
    ? requireVersion(ctx.store, target).version
    : key.versions.find((candidate) => candidate.id === key.primaryId);
  if (!version) throw failedPrecondition(`CryptoKey ${key.name} has no primary version.`);
  requireEnabled(key, version);
  const ciphertext = encryptSymmetric(
    material(version),
    version.id,
    req.plaintext,
    req.additionalAuthenticatedData,
  );
  return {
    name: versionName(key.name, version.id),
    ciphertext,
    ciphertextCrc32c: crc32cValue(ciphertext),
    verifiedPlaintextCrc32c: verifiedPlaintext,
    verifiedAdditionalAuthenticatedDataCrc32c: verifiedAad,
    protectionLevel: version.protectionLevel,
  };
}

export function decrypt(
  ctx: CallContext,
  req: {
    name: string;
    ciphertext: Buffer;
    additionalAuthenticatedData: Buffer;
    ciphertextCrc32c: Int64Value;
    additionalAuthenticatedDataCrc32c: Int64Value;
  },
) {
  const { name } = parseCryptoKey(req.name, 'name');
  if (req.ciphertext.length === 0) throw invalidArgument("The required field 'ciphertext' is empty.");
  limit(req.ciphertext, MAX_CIPHERTEXT_BYTES, 'ciphertext');
  limit(req.additionalAuthenticatedData, MAX_DATA_BYTES, 'additional_authenticated_data');
  verifyCrc32c(req.ciphertextCrc32c, req.ciphertext, 'ciphertext_crc32c', 'ciphertext');
  verifyCrc32c(
    req.additionalAuthenticatedDataCrc32c,
    req.additionalAuthenticatedData,
    'additional_authenticated_data_crc32c',
    'additional_authenticated_data',
  );
  authorize(ctx, 'cloudkms.cryptoKeyVersions.useToDecrypt', name);

  const key = requireCryptoKey(ctx.store, name);
  requirePurpose(key, 'ENCRYPT_DECRYPT');
  const id = ciphertextVersion(req.ciphertext);
  const version = key.versions.find((candidate) => candidate.id === id);
  if (!version) throw invalidArgument(DECRYPTION_FAILED);
  requireEnabled(key, version);
  const plaintext = decryptSymmetric(material(version), req.ciphertext, req.additionalAuthenticatedData);
  if (!plaintext) throw invalidArgument(DECRYPTION_FAILED);
  return {
    plaintext,
    plaintextCrc32c: crc32cValue(plaintext),
    usedPrimary: version.id === key.primaryId,
    protectionLevel: version.protectionLevel,
  };
}

type Digest = {
  digest?: string;
  sha256?: Buffer;
  sha384?: Buffer;
  sha512?: Buffer;
  externalMu?: Buffer;
} | null;

export function asymmetricSign(
  ctx: CallContext,
  req: { name: string; digest: Digest; digestCrc32c: Int64Value; data: Buffer; dataCrc32c: Int64Value },
) {
  const name = parseVersion(req.name, 'name');
  const kind = req.digest?.digest;
  const digest = kind ? (req.digest?.[kind as 'sha256' | 'sha384' | 'sha512' | 'externalMu'] ?? null) : null;
  if (!digest && req.data.length > 0) return signData(ctx, name, req.data, req.dataCrc32c);
  if (!digest) {
    // EC and RSA keys sign a digest; signing raw data is only for algorithms we do not emulate.
    throw invalidArgument(
      req.data.length > 0
        ? "The field 'data' is not supported for this algorithm; send 'digest'."
        : "The required field 'digest' is empty.",
    );
  }
  const verifiedDigest = verifyCrc32c(req.digestCrc32c, digest, 'digest_crc32c', 'digest');
  verifyCrc32c(req.dataCrc32c, req.data, 'data_crc32c', 'data');
  authorize(ctx, 'cloudkms.cryptoKeyVersions.useToSign', name.name);

  const { key, version } = requireVersion(ctx.store, name);
  requirePurpose(key, 'ASYMMETRIC_SIGN');
  requireEnabled(key, version);
  const algorithm = version.algorithm;
  if (algorithm === ED25519_ALGORITHM) {
    throw invalidArgument(`Algorithm ${algorithm} signs the message itself: send 'data', not 'digest'.`);
  }
  if (!isEcAlgorithm(algorithm)) throw failedPrecondition(`Algorithm ${algorithm} cannot sign.`);
  const expected = EC_ALGORITHMS[algorithm].digest;
  if (kind !== expected || digest.length !== EC_ALGORITHMS[algorithm].bytes) {
    throw invalidArgument(
      `Algorithm ${algorithm} needs a ${EC_ALGORITHMS[algorithm].bytes}-byte digest.${expected}, not ${digest.length} bytes in digest.${kind}.`,
    );
  }
  const signature = ecSignDigest(algorithm, material(version), digest);
  return {
    signature,
    signatureCrc32c: crc32cValue(signature),
    verifiedDigestCrc32c: verifiedDigest,
    name: name.name,
    verifiedDataCrc32c: false,
    protectionLevel: version.protectionLevel,
  };
}

/** AsymmetricSign over the message itself, which only EC_SIGN_ED25519 keys take. */
function signData(
  ctx: CallContext,
  name: ReturnType<typeof parseVersion>,
  data: Buffer,
  dataCrc32c: Int64Value,
) {
  limit(data, MAX_DATA_BYTES, 'data');
  const verifiedData = verifyCrc32c(dataCrc32c, data, 'data_crc32c', 'data');
  authorize(ctx, 'cloudkms.cryptoKeyVersions.useToSign', name.name);
  const { key, version } = requireVersion(ctx.store, name);
  requirePurpose(key, 'ASYMMETRIC_SIGN');
  requireEnabled(key, version);
  if (version.algorithm !== ED25519_ALGORITHM) {
    throw invalidArgument("The field 'data' is not supported for this algorithm; send 'digest'.");
  }
  const signature = ed25519Sign(material(version), data);
  return {
    signature,
    signatureCrc32c: crc32cValue(signature),
    verifiedDigestCrc32c: false,
    name: name.name,
    verifiedDataCrc32c: verifiedData,
    protectionLevel: version.protectionLevel,
  };
}

export function getPublicKey(ctx: CallContext, req: { name: string; publicKeyFormat: string }) {
  const name = parseVersion(req.name, 'name');
  const format = req.publicKeyFormat;
  if (format !== 'PUBLIC_KEY_FORMAT_UNSPECIFIED' && format !== 'PEM' && format !== 'DER') {
    throw invalidArgument(`public_key_format ${format} does not apply to this algorithm.`);
  }
  authorize(ctx, 'cloudkms.cryptoKeyVersions.viewPublicKey', name.name);
  const { key, version } = requireVersion(ctx.store, name);
  requirePurpose(key, 'ASYMMETRIC_SIGN');
  requireEnabled(key, version);
  const { pem, der } = ecPublicKey(material(version));
  const pemBytes = Buffer.from(pem, 'utf8');
  const exported = format === 'DER' ? der : format === 'PEM' ? pemBytes : null;
  return {
    pem,
    algorithm: version.algorithm,
    pemCrc32c: crc32cValue(pemBytes),
    name: name.name,
    protectionLevel: version.protectionLevel,
    publicKeyFormat: format === 'PUBLIC_KEY_FORMAT_UNSPECIFIED' ? 'PEM' : format,
    publicKey: exported ? { data: exported, crc32cChecksum: crc32cValue(exported) } : null,
  };
}

export function macSign(ctx: CallContext, req: { name: string; data: Buffer; dataCrc32c: Int64Value }) {
  const name = parseVersion(req.name, 'name');
  limit(req.data, MAX_DATA_BYTES, 'data');
  const verifiedData = verifyCrc32c(req.dataCrc32c, req.data, 'data_crc32c', 'data');
  authorize(ctx, 'cloudkms.cryptoKeyVersions.useToSign', name.name);
  const { key, version } = requireVersion(ctx.store, name);
  requirePurpose(key, 'MAC');
  requireEnabled(key, version);
  if (!isMacAlgorithm(version.algorithm))
    throw failedPrecondition(`Algorithm ${version.algorithm} cannot MAC.`);
  const mac = hmacSign(version.algorithm, material(version), req.data);
  return {
    name: name.name,
    mac,
    macCrc32c: crc32cValue(mac),
    verifiedDataCrc32c: verifiedData,
    protectionLevel: version.protectionLevel,
  };
}

export function macVerify(
  ctx: CallContext,
  req: { name: string; data: Buffer; dataCrc32c: Int64Value; mac: Buffer; macCrc32c: Int64Value },
) {
  const name = parseVersion(req.name, 'name');
  limit(req.data, MAX_DATA_BYTES, 'data');
  if (req.mac.length === 0) throw invalidArgument("The required field 'mac' is empty.");
  limit(req.mac, 1024, 'mac');
  const verifiedData = verifyCrc32c(req.dataCrc32c, req.data, 'data_crc32c', 'data');
  const verifiedMac = verifyCrc32c(req.macCrc32c, req.mac, 'mac_crc32c', 'mac');
  authorize(ctx, 'cloudkms.cryptoKeyVersions.useToVerify', name.name);
  const { key, version } = requireVersion(ctx.store, name);
  requirePurpose(key, 'MAC');
  requireEnabled(key, version);
  if (!isMacAlgorithm(version.algorithm))
    throw failedPrecondition(`Algorithm ${version.algorithm} cannot MAC.`);
  const success = hmacVerify(version.algorithm, material(version), req.data, req.mac);
  return {
    name: name.name,
    success,
    verifiedDataCrc32c: verifiedData,
    verifiedMacCrc32c: verifiedMac,
    // Echoes success so a client can detect a response corrupted in transit.
    verifiedSuccessIntegrity: success,
    protectionLevel: version.protectionLevel,
  };
}
