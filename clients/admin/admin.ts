// The operator's side of onboarding (docs/OPERATIONS.md): register a hospital's public key,
// list and suspend hospitals, and hand the hospital the configuration its connector pins —
// the API base, its buckets, and the pairing and ingest functions' public keys.
import type { Firestore } from '@google-cloud/firestore';
import { createFirestoreHospitalRegistry } from '../../shared/adapters/firestore-pairing.ts';
import { createFunctionKeyDirectory } from '../../shared/adapters/function-keys.ts';
import { importPublicKey, isCryptoError, type PublicKey } from '../../shared/crypto/index.ts';
import type { HospitalRecord } from '../../shared/ports/pairing-store.ts';
import { canonicalApiBase, hospitalIdSchema } from '../../shared/protocol/index.ts';
import { bucketName, loadCatalog } from '../../shared/runtime/catalog.ts';
import { UsageError } from '../lib/cli.ts';
import type { Onboarding } from '../connector/home.ts';

export interface RegisterOptions {
  readonly hospitalId: string;
  /** base64url of the hospital's 45-byte public key (`cb-connector keys` prints it). */
  readonly publicKey: string;
  readonly expiresDays: number;
  readonly apiBase: string;
  readonly projectId: string;
  readonly now: Date;
}

function parsePublicKey(text: string): PublicKey {
  try {
    return importPublicKey(text.trim());
  } catch (error) {
    if (isCryptoError(error))
      throw new UsageError('--public-key is not a Themis EC P-256 public key (base64url)');
    throw error;
  }
}

async function functionKey(firestore: Firestore, name: string): Promise<PublicKey> {
  const published = await createFunctionKeyDirectory({ firestore }).publishedPublicKeys();
  const key = published.find((entry) => entry.functionName === name);
  if (!key)
    throw new UsageError(`the ${name} function has no published key yet (provision function keys first)`);
  return key.publicKey;
}

/** Registers (or re-registers) a hospital and returns its connector's onboarding configuration. */
export async function registerHospital(firestore: Firestore, options: RegisterOptions): Promise<Onboarding> {
  const id = hospitalIdSchema.safeParse(options.hospitalId);
  if (!id.success) throw new UsageError('--id must be 3–40 of a-z, 0-9 and -, starting alphanumeric');
  const apiBase = canonicalApiBase(options.apiBase);
  if (apiBase === undefined)
    throw new UsageError('--api-base must be https://host[:port][/path] (http only for 127.0.0.1)');
  if (!Number.isInteger(options.expiresDays) || options.expiresDays < 1 || options.expiresDays > 3660) {
    throw new UsageError('--expires-days must be a whole number from 1 to 3660');
  }
  const publicKey = parsePublicKey(options.publicKey);
  await createFirestoreHospitalRegistry(firestore).registerHospital({
    hospitalId: id.data,
    status: 'active',
    publicKeys: [publicKey],
    expiresAt: new Date(options.now.getTime() + options.expiresDays * 24 * 3600 * 1000),
  });
  const catalog = loadCatalog();
  return {
    hospitalId: id.data,
    apiBase,
    ingestBucket: bucketName(catalog, 'ingest', options.projectId),
    outboxBucket: bucketName(catalog, 'outbox', options.projectId),
    pairingPublicKey: (await functionKey(firestore, 'pairing')).toBase64Url(),
    ingestPublicKey: (await functionKey(firestore, 'ingest')).toBase64Url(),
  };
}

export async function listHospitals(firestore: Firestore): Promise<HospitalRecord[]> {
  return createFirestoreHospitalRegistry(firestore).listHospitals();
}

/** Suspends a hospital: its signed requests and uploads are refused from now on. */
export async function suspendHospital(firestore: Firestore, hospitalId: string): Promise<void> {
  const registry = createFirestoreHospitalRegistry(firestore);
  const hospital = await registry.getHospital(hospitalId);
  if (!hospital) throw new UsageError(`no hospital ${hospitalId} is registered`);
  await registry.registerHospital({
    hospitalId,
    status: 'suspended',
    publicKeys: Object.values(hospital.publicKeys).map((key) => importPublicKey(key)),
    expiresAt: hospital.expiresAt,
  });
}
