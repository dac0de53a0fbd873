// Key rings, crypto keys and versions: create, get, list, rotate, enable/disable, destroy,
// restore. Order of checks, as in Cloud KMS: request shape (INVALID_ARGUMENT), then IAM
// (PERMISSION_DENIED, which also hides whether the resource exists), then existence.
import { authorize, type CallContext } from './context.ts';
import {
  generateMaterial,
  isAlgorithm,
  isPurpose,
  purposeOf,
  SYMMETRIC_ALGORITHM,
} from './crypto/algorithms.ts';
import type { Algorithm, Purpose } from './crypto/algorithms.ts';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, unimplemented } from './errors.ts';
import { parseCryptoKey, parseId, parseKeyRing, parseLocation, parseVersion, versionName } from './names.ts';
import { page, type ListRequest } from './paging.ts';
import {
  cryptoKeyResource,
  keyRingResource,
  requireCryptoKey,
  requireKeyRing,
  requireVersion,
  versionResource,
} from './resources.ts';
import type { CryptoKeyRecord, ProtectionLevel, VersionRecord, VersionState } from './store.ts';

type Duration = { seconds: number; nanos: number } | null;
type TimestampIn = { seconds: number; nanos: number } | null;

interface CryptoKeyIn {
  purpose: string;
  versionTemplate: { protectionLevel: string; algorithm: string } | null;
  labels: Record<string, string>;
  importOnly: boolean;
  destroyScheduledDuration: Duration;
  rotationPeriod?: Duration;
  nextRotationTime: TimestampIn;
  cryptoKeyBackend: string;
}

interface CryptoKeyVersionIn {
  name: string;
  state: string;
}

const DEFAULT_DESTROY_SCHEDULED_SECONDS = 30 * 24 * 3600;

export async function createKeyRing(ctx: CallContext, req: { parent: string; keyRingId: string }) {
  const parent = parseLocation(req.parent, 'parent');
  const name = `${parent}/keyRings/${parseId(req.keyRingId, 'key_ring_id')}`;
  authorize(ctx, 'cloudkms.keyRings.create', parent);
  if (ctx.store.keyRing(name)) throw alreadyExists('KeyRing', name);
  const ring = { name, createTime: Date.now() };
  ctx.store.addKeyRing(ring);
  await ctx.store.save();
  return keyRingResource(ring);
}

export function getKeyRing(ctx: CallContext, req: { name: string }) {
  const name = parseKeyRing(req.name, 'name');
  authorize(ctx, 'cloudkms.keyRings.get', name);
  return keyRingResource(requireKeyRing(ctx.store, name));
}

export function listKeyRings(ctx: CallContext, req: ListRequest) {
  const parent = parseLocation(req.parent, 'parent');
  authorize(ctx, 'cloudkms.keyRings.list', parent);
  const { items, nextPageToken, totalSize } = page(ctx.store.keyRings(parent), req);
  return { keyRings: items.map(keyRingResource), nextPageToken, totalSize };
}

export async function createCryptoKey(
  ctx: CallContext,
  req: {
    parent: string;
    cryptoKeyId: string;
    cryptoKey: CryptoKeyIn | null;
    skipInitialVersionCreation: boolean;
  },
) {
  const parent = parseKeyRing(req.parent, 'parent');
  const name = `${parent}/cryptoKeys/${parseId(req.cryptoKeyId, 'crypto_key_id')}`;
  if (!req.cryptoKey) throw invalidArgument("The required field 'crypto_key' is empty.");
  const spec = cryptoKeySpec(req.cryptoKey);
  authorize(ctx, 'cloudkms.cryptoKeys.create', parent);
  requireKeyRing(ctx.store, parent);
  if (ctx.store.cryptoKey(name)) throw alreadyExists('CryptoKey', name);

  const now = Date.now();
  const key: CryptoKeyRecord = { name, createTime: now, primaryId: null, versions: [], ...spec };
  if (!req.skipInitialVersionCreation) {
    key.versions.push(newVersion(key, 'ENABLED', now));
    if (key.purpose === 'ENCRYPT_DECRYPT') key.primaryId = 1;
  }
  ctx.store.addCryptoKey(key);
  await ctx.store.save();
  return cryptoKeyResource(key);
}

export function getCryptoKey(ctx: CallContext, req: { name: string }) {
  const { name } = parseCryptoKey(req.name, 'name');
  authorize(ctx, 'cloudkms.cryptoKeys.get', name);
  return cryptoKeyResource(requireCryptoKey(ctx.store, name));
}

export function listCryptoKeys(ctx: CallContext, req: ListRequest) {
  const parent = parseKeyRing(req.parent, 'parent');
  authorize(ctx, 'cloudkms.cryptoKeys.list', parent);
  requireKeyRing(ctx.store, parent);
  const { items, nextPageToken, totalSize } = page(ctx.store.cryptoKeys(parent), req);
  return { cryptoKeys: items.map(cryptoKeyResource), nextPageToken, totalSize };
}

export async function createCryptoKeyVersion(
  ctx: CallContext,
  req: { parent: string; cryptoKeyVersion: CryptoKeyVersionIn | null },
) {
  const { name: parent } = parseCryptoKey(req.parent, 'parent');
  if (!req.cryptoKeyVersion) throw invalidArgument("The required field 'crypto_key_version' is empty.");
  const state = req.cryptoKeyVersion.state;
  if (state !== 'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED' && state !== 'ENABLED' && state !== 'DISABLED') {
    throw invalidArgument(`crypto_key_version.state must be ENABLED or DISABLED, not ${state}.`);
  }
  authorize(ctx, 'cloudkms.cryptoKeyVersions.create', parent);
  const key = requireCryptoKey(ctx.store, parent);
  const version = newVersion(key, state === 'DISABLED' ? 'DISABLED' : 'ENABLED', Date.now());
  key.versions.push(version);
  await ctx.store.save();
  return versionResource(key, version);
}

export function getCryptoKeyVersion(ctx: CallContext, req: { name: string }) {
  const name = parseVersion(req.name, 'name');
  authorize(ctx, 'cloudkms.cryptoKeyVersions.get', name.name);
  const { key, version } = requireVersion(ctx.store, name);
  return versionResource(key, version);
}

export function listCryptoKeyVersions(ctx: CallContext, req: ListRequest) {
  const { name: parent } = parseCryptoKey(req.parent, 'parent');
  authorize(ctx, 'cloudkms.cryptoKeyVersions.list', parent);
  const key = requireCryptoKey(ctx.store, parent);
  const { items, nextPageToken, totalSize } = page(key.versions, req);
  return {
    cryptoKeyVersions: items.map((version) => versionResource(key, version)),
    nextPageToken,
    totalSize,
  };
}

export async function updateCryptoKeyPrimaryVersion(
  ctx: CallContext,
  req: { name: string; cryptoKeyVersionId: string },
) {
  const { name } = parseCryptoKey(req.name, 'name');
  if (!/^[1-9][0-9]{0,8}$/.test(req.cryptoKeyVersionId)) {
    throw invalidArgument(
      `crypto_key_version_id must be a version number, not '${req.cryptoKeyVersionId.slice(0, 40)}'.`,
    );
  }
  authorize(ctx, 'cloudkms.cryptoKeys.update', name);
  const key = requireCryptoKey(ctx.store, name);
  if (key.purpose !== 'ENCRYPT_DECRYPT') {
    throw failedPrecondition(
      `CryptoKey ${name} has purpose ${key.purpose}; only ENCRYPT_DECRYPT keys have a primary.`,
    );
  }
  const id = Number(req.cryptoKeyVersionId);
  const version = key.versions.find((candidate) => candidate.id === id);
  if (!version) throw notFound('CryptoKeyVersion', versionName(name, id));
  if (version.state !== 'ENABLED') {
    throw failedPrecondition(`${versionName(name, id)} is not enabled, current state is: ${version.state}.`);
  }
  key.primaryId = id;
  await ctx.store.save();
  return cryptoKeyResource(key);
}

export async function updateCryptoKeyVersion(
  ctx: CallContext,
  req: { cryptoKeyVersion: CryptoKeyVersionIn | null; updateMask: { paths: string[] } | null },
) {
  if (!req.cryptoKeyVersion) throw invalidArgument("The required field 'crypto_key_version' is empty.");
  const name = parseVersion(req.cryptoKeyVersion.name, 'crypto_key_version.name');
  const paths = req.updateMask?.paths ?? [];
  if (paths.length === 0) throw invalidArgument("The required field 'update_mask' is empty.");
  const unsupported = paths.filter((path) => path !== 'state');
  if (unsupported.length > 0) {
    throw unimplemented(`The local KMS emulator can only update state, not ${unsupported.join(', ')}.`);
  }
  const target = req.cryptoKeyVersion.state;
  if (target !== 'ENABLED' && target !== 'DISABLED') {
    throw invalidArgument(`crypto_key_version.state can only be set to ENABLED or DISABLED, not ${target}.`);
  }
  authorize(ctx, 'cloudkms.cryptoKeyVersions.update', name.name);
  const { key, version } = requireVersion(ctx.store, name);
  if (version.state !== 'ENABLED' && version.state !== 'DISABLED') {
    throw failedPrecondition(
      `${name.name} is in state ${version.state}; only ENABLED or DISABLED versions can change.`,
    );
  }
  version.state = target;
  await ctx.store.save();
  return versionResource(key, version);
}

export async function destroyCryptoKeyVersion(ctx: CallContext, req: { name: string }) {
  const name = parseVersion(req.name, 'name');
  authorize(ctx, 'cloudkms.cryptoKeyVersions.destroy', name.name);
  const { key, version } = requireVersion(ctx.store, name);
  if (version.state !== 'ENABLED' && version.state !== 'DISABLED') {
    throw failedPrecondition(
      `${name.name} is in state ${version.state}; only ENABLED or DISABLED versions can be destroyed.`,
    );
  }
  version.state = 'DESTROY_SCHEDULED';
  version.destroyTime = Date.now() + key.destroyScheduledSeconds * 1000;
  await ctx.store.save();
  return versionResource(key, version);
}

export async function restoreCryptoKeyVersion(ctx: CallContext, req: { name: string }) {
  const name = parseVersion(req.name, 'name');
  authorize(ctx, 'cloudkms.cryptoKeyVersions.restore', name.name);
  const { key, version } = requireVersion(ctx.store, name);
  if (version.state !== 'DESTROY_SCHEDULED') {
    throw failedPrecondition(
      `${name.name} is in state ${version.state}; only DESTROY_SCHEDULED versions can be restored.`,
    );
  }
  version.state = 'DISABLED';
  version.destroyTime = null;
  await ctx.store.save();
  return versionResource(key, version);
}

function cryptoKeySpec(
  input: CryptoKeyIn,
): Omit<CryptoKeyRecord, 'name' | 'createTime' | 'primaryId' | 'versions'> {
  const purpose = input.purpose;
  if (purpose === 'CRYPTO_KEY_PURPOSE_UNSPECIFIED')
    throw invalidArgument("The required field 'crypto_key.purpose' is empty.");
  if (!isPurpose(purpose)) {
    throw unimplemented(
      `The local KMS emulator supports purposes ENCRYPT_DECRYPT, ASYMMETRIC_SIGN and MAC, not ${purpose}.`,
    );
  }
  if (input.importOnly) throw unimplemented('The local KMS emulator does not support import_only keys.');
  if (input.cryptoKeyBackend)
    throw unimplemented('The local KMS emulator does not support crypto_key_backend.');
  const template = input.versionTemplate;
  const algorithm = templateAlgorithm(
    purpose,
    template?.algorithm ?? 'CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED',
  );
  const protectionLevel = templateProtection(template?.protectionLevel ?? 'PROTECTION_LEVEL_UNSPECIFIED');

  const destroy = input.destroyScheduledDuration;
  if (destroy && (destroy.seconds < 0 || destroy.nanos !== 0)) {
    throw invalidArgument(
      'crypto_key.destroy_scheduled_duration must be a whole, non-negative number of seconds.',
    );
  }
  const rotation = input.rotationPeriod ?? null;
  if ((rotation || input.nextRotationTime) && purpose !== 'ENCRYPT_DECRYPT') {
    throw invalidArgument('Only ENCRYPT_DECRYPT keys can have a rotation schedule.');
  }
  return {
    purpose,
    algorithm,
    protectionLevel,
    labels: { ...input.labels },
    destroyScheduledSeconds: destroy ? destroy.seconds : DEFAULT_DESTROY_SCHEDULED_SECONDS,
    rotationPeriodSeconds: rotation ? rotation.seconds : null,
    nextRotationTime: input.nextRotationTime
      ? input.nextRotationTime.seconds * 1000 + Math.floor(input.nextRotationTime.nanos / 1e6)
      : null,
  };
}

function templateAlgorithm(purpose: Purpose, algorithm: string): Algorithm {
  if (algorithm === 'CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED') {
    if (purpose === 'ENCRYPT_DECRYPT') return SYMMETRIC_ALGORITHM;
    throw invalidArgument(`crypto_key.version_template.algorithm is required for purpose ${purpose}.`);
  }
  if (!isAlgorithm(algorithm)) {
    throw unimplemented(
      `The local KMS emulator does not support algorithm ${algorithm}; it supports GOOGLE_SYMMETRIC_ENCRYPTION, EC_SIGN_P256_SHA256, EC_SIGN_P384_SHA384, EC_SIGN_ED25519 and HMAC_*.`,
    );
  }
  if (purposeOf(algorithm) !== purpose) {
    throw invalidArgument(`Algorithm ${algorithm} is not compatible with purpose ${purpose}.`);
  }
  return algorithm;
}

function templateProtection(level: string): ProtectionLevel {
  if (level === 'PROTECTION_LEVEL_UNSPECIFIED' || level === 'SOFTWARE') return 'SOFTWARE';
  // HSM keys are emulated in software but report HSM, so code paths that read it still work.
  if (level === 'HSM') return 'HSM';
  throw unimplemented(`The local KMS emulator supports protection levels SOFTWARE and HSM, not ${level}.`);
}

function newVersion(key: CryptoKeyRecord, state: VersionState, now: number): VersionRecord {
  const id = key.versions.reduce((max, version) => Math.max(max, version.id), 0) + 1;
  return {
    id,
    state,
    algorithm: key.algorithm,
    protectionLevel: key.protectionLevel,
    createTime: now,
    destroyTime: null,
    destroyEventTime: null,
    material: generateMaterial(key.algorithm).toString('base64'),
  };
}
