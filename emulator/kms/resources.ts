// Store records -> the KMS resource messages, and lookups that fail with KMS's NOT_FOUND.
import { failedPrecondition, notFound } from './errors.ts';
import { versionName, type VersionName } from './names.ts';
import type { CryptoKeyRecord, KeyRingRecord, KmsStore, VersionRecord } from './store.ts';
import type { Purpose } from './crypto/algorithms.ts';

export type Timestamp = { seconds: number; nanos: number };

export function timestamp(ms: number | null): Timestamp | null {
  if (ms === null) return null;
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

export function keyRingResource(ring: KeyRingRecord) {
  return { name: ring.name, createTime: timestamp(ring.createTime) };
}

export function versionResource(key: CryptoKeyRecord, version: VersionRecord) {
  return {
    name: versionName(key.name, version.id),
    state: version.state,
    protectionLevel: version.protectionLevel,
    algorithm: version.algorithm,
    createTime: timestamp(version.createTime),
    generateTime: timestamp(version.createTime),
    destroyTime: timestamp(version.destroyTime),
    destroyEventTime: timestamp(version.destroyEventTime),
  };
}

export function cryptoKeyResource(key: CryptoKeyRecord) {
  const primary =
    key.purpose === 'ENCRYPT_DECRYPT' && key.primaryId !== null
      ? key.versions.find((version) => version.id === key.primaryId)
      : undefined;
  return {
    name: key.name,
    primary: primary ? versionResource(key, primary) : null,
    purpose: key.purpose,
    createTime: timestamp(key.createTime),
    nextRotationTime: timestamp(key.nextRotationTime),
    ...(key.rotationPeriodSeconds !== null
      ? { rotationPeriod: { seconds: key.rotationPeriodSeconds, nanos: 0 } }
      : {}),
    versionTemplate: { protectionLevel: key.protectionLevel, algorithm: key.algorithm },
    labels: key.labels,
    importOnly: false,
    destroyScheduledDuration: { seconds: key.destroyScheduledSeconds, nanos: 0 },
  };
}

export function requireKeyRing(store: KmsStore, name: string): KeyRingRecord {
  const ring = store.keyRing(name);
  if (!ring) throw notFound('KeyRing', name);
  return ring;
}

export function requireCryptoKey(store: KmsStore, name: string): CryptoKeyRecord {
  const key = store.cryptoKey(name);
  if (!key) throw notFound('CryptoKey', name);
  return key;
}

export function requireVersion(
  store: KmsStore,
  name: VersionName,
): { key: CryptoKeyRecord; version: VersionRecord } {
  const key = requireCryptoKey(store, name.cryptoKey);
  const version = key.versions.find((candidate) => candidate.id === name.id);
  if (!version) throw notFound('CryptoKeyVersion', name.name);
  return { key, version };
}

export function requirePurpose(key: CryptoKeyRecord, purpose: Purpose): void {
  if (key.purpose !== purpose) {
    throw failedPrecondition(
      `CryptoKey ${key.name} has purpose ${key.purpose}; this method needs purpose ${purpose}.`,
    );
  }
}

export function requireEnabled(key: CryptoKeyRecord, version: VersionRecord): void {
  if (version.state !== 'ENABLED') {
    throw failedPrecondition(
      `${versionName(key.name, version.id)} is not enabled, current state is: ${version.state}.`,
    );
  }
}

/** Key material of an ENABLED version (check that first). */
export function material(version: VersionRecord): Buffer {
  if (version.material === null) throw failedPrecondition('The key material of this version was destroyed.');
  return Buffer.from(version.material, 'base64');
}
