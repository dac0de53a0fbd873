// The connector's state directory (inside the hospital): the hospital's keys (an owner-only
// file, or a pointer to the PKCS#11 token that holds them), the onboarding configuration the
// operator handed over (API base, bucket names, the pairing and ingest public keys it pins),
// the enrolment journal (every invitation it issued and what became of it), a journal of what it
// sent, and a work directory for ciphertext spools. Patient numbers and staff ids appear only in
// the journals, which never leave the hospital.
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { appendFile, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { generateKeyPair, importPublicKey, type PublicKey } from '../../shared/core/crypto/index.ts';
import { exportPrivateKey } from '../../shared/core/crypto/index.ts';
import {
  contentClassSchema,
  deriveOperatorRef,
  hospitalIdSchema,
  hospitalKeyId,
  MIN_MASTER_SECRET_BYTES,
  publicKeySchema,
  recordIdSchema,
  toBase64Url,
  uploadIdSchema,
} from '../../shared/core/protocol/index.ts';
import { createApiClient, type ApiClient } from '../lib/api-client.ts';
import { UsageError } from '../lib/cli.ts';
import { exists, readJsonFile, writeJsonFile, writePrivateFile } from '../lib/files.ts';
import type { KeyCustody } from './custody/custody.ts';
import { assertOwnerOnly, openFileCustody } from './custody/file.ts';
import { EnrolmentJournal } from './enrolments.ts';

/** What the operator gives a hospital at onboarding (`cb-admin register-hospital --json`). */
export const onboardingSchema = z.strictObject({
  hospitalId: hospitalIdSchema,
  apiBase: z.string().min(1),
  ingestBucket: z.string().min(1),
  outboxBucket: z.string().min(1),
  /** Verifies device certificates. */
  pairingPublicKey: publicKeySchema,
  /** Verifies receipts. */
  ingestPublicKey: publicKeySchema,
});
export type Onboarding = z.output<typeof onboardingSchema>;

export const HOSPITAL_KEYS_FORMAT = 'clinic-bridge/hospital-keys/v2';

/** The hospital-keys file: the keys themselves (file custody), or where the token is (PKCS#11). */
const keysSchema = z.discriminatedUnion('custody', [
  z.strictObject({
    format: z.literal(HOSPITAL_KEYS_FORMAT),
    hospitalId: hospitalIdSchema,
    publicKey: publicKeySchema,
    custody: z.literal('file'),
    privateKey: z.string().min(1),
    masterSecret: z.string().min(1),
    bindingKeyVersion: z.int().min(1).max(0xffff),
  }),
  z.strictObject({
    format: z.literal(HOSPITAL_KEYS_FORMAT),
    hospitalId: hospitalIdSchema,
    publicKey: publicKeySchema,
    custody: z.literal('pkcs11'),
    /** The vendor's PKCS#11 library and the token's label; the PIN comes from $CB_HSM_PIN. */
    module: z.string().min(1),
    tokenLabel: z.string().min(1).max(32),
  }),
]);

/** Where `cb-connector keys` puts a new hospital key pair. */
export type KeyPlacement =
  | { readonly custody: 'file' }
  | { readonly custody: 'pkcs11'; readonly module: string; readonly tokenLabel: string };

/** The token's PIN, from the environment only: never an argument (process lists) nor a file. */
function hsmPin(): string {
  const pin = process.env.CB_HSM_PIN;
  if (!pin) throw new UsageError('PKCS#11 custody needs the token PIN in $CB_HSM_PIN');
  return pin;
}

export const journalEntrySchema = z.strictObject({
  uploadId: uploadIdSchema,
  recordId: recordIdSchema,
  patientNumber: z.string().min(1),
  file: z.string().min(1),
  contentClass: contentClassSchema,
  mediaType: z.string().min(1),
  title: z.string().optional(),
  sentAt: z.string(),
  /** Who sent it, as the hospital knows them (its pseudonym went into the manifest). */
  staffId: z.string().min(1).max(128).optional(),
  /** recalled: taken back after it was accepted (clients/connector/recall.ts). */
  status: z.enum(['sent', 'accepted', 'rejected', 'recalled']),
  errorCode: z.string().optional(),
});
export type JournalEntry = z.output<typeof journalEntrySchema>;

export interface ConnectorIdentity {
  readonly hospitalId: string;
  readonly publicKey: PublicKey;
  readonly custody: KeyCustody;
}

/** The member of staff on whose behalf the connector acts (NEN 7513 "who"). */
export interface Operator {
  /** As the hospital knows them: an account name. Stays in the hospital's journals. */
  readonly staffId: string;
  /** The pseudonym the cloud sees (deriveOperatorRef). */
  readonly operatorRef: string;
}

export interface Connector extends ConnectorIdentity {
  readonly home: ConnectorHome;
  readonly config: Onboarding;
  readonly pairingKey: PublicKey;
  readonly ingestKey: PublicKey;
  /** Hospital-signed client for /pairing/v1. */
  readonly api: ApiClient;
  readonly enrolments: EnrolmentJournal;
  readonly operator: Operator;
}

/** Who is acting: --operator, else $CB_OPERATOR, else the account running the connector. */
export function staffIdFrom(option: string | undefined): string {
  return option ?? process.env.CB_OPERATOR ?? userInfo().username;
}

export class ConnectorHome {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  get keysPath(): string {
    return join(this.dir, 'hospital-keys.json');
  }
  get configPath(): string {
    return join(this.dir, 'connector.json');
  }
  get journalPath(): string {
    return join(this.dir, 'journal.jsonl');
  }
  get enrolmentsPath(): string {
    return join(this.dir, 'enrolments.jsonl');
  }
  get workDir(): string {
    return join(this.dir, 'work');
  }

  /**
   * Generates the hospital key pair and master secret (or, for PKCS#11, creates the keys inside
   * the token and records where it is); refuses to replace them unless forced. Returns the
   * public key to register.
   */
  async createKeys(
    hospitalId: string,
    force: boolean,
    placement: KeyPlacement = { custody: 'file' },
  ): Promise<PublicKey> {
    const id = hospitalIdSchema.safeParse(hospitalId);
    if (!id.success)
      throw new UsageError('the hospital id must be 3–40 of a-z, 0-9 and -, starting alphanumeric');
    if (!force && (await exists(this.keysPath))) {
      throw new UsageError(
        `keys already exist in ${this.dir} (replacing them cuts off every paired device; use --force)`,
      );
    }
    if (placement.custody === 'pkcs11') {
      const { provisionPkcs11Keys } = await import('./custody/pkcs11.ts');
      const publicKey = provisionPkcs11Keys({
        modulePath: placement.module,
        tokenLabel: placement.tokenLabel,
        pin: hsmPin(),
      });
      await writeJsonFile(this.keysPath, {
        format: HOSPITAL_KEYS_FORMAT,
        hospitalId: id.data,
        publicKey: publicKey.toBase64Url(),
        custody: 'pkcs11',
        module: placement.module,
        tokenLabel: placement.tokenLabel,
      });
      return publicKey;
    }
    const keys = generateKeyPair();
    await writeJsonFile(this.keysPath, {
      format: HOSPITAL_KEYS_FORMAT,
      hospitalId: id.data,
      publicKey: keys.publicKey.toBase64Url(),
      custody: 'file',
      privateKey: toBase64Url(exportPrivateKey(keys.privateKey)),
      masterSecret: toBase64Url(new Uint8Array(randomBytes(MIN_MASTER_SECRET_BYTES))),
      bindingKeyVersion: 1,
    });
    return keys.publicKey;
  }

  /** The keys file, which only its owner may read or write (checked first). */
  async #storedKeys(): Promise<z.output<typeof keysSchema>> {
    await assertOwnerOnly(this.keysPath);
    return readJsonFile(this.keysPath, keysSchema, 'hospital keys (run `cb-connector keys` first)');
  }

  /** The hospital's keys, opened in their custody. close() it when done. */
  async identity(): Promise<ConnectorIdentity> {
    const stored = await this.#storedKeys();
    let custody: KeyCustody;
    if (stored.custody === 'file') {
      custody = openFileCustody(stored);
    } else {
      // Loaded only here: the native PKCS#11 binding is needed by hospitals that use a token.
      const { openPkcs11Custody } = await import('./custody/pkcs11.ts');
      custody = openPkcs11Custody({
        modulePath: stored.module,
        tokenLabel: stored.tokenLabel,
        pin: hsmPin(),
      });
    }
    if (custody.signer.publicKey.toBase64Url() !== stored.publicKey) {
      custody.close();
      throw new UsageError(`the hospital key in custody is not the one ${this.keysPath} names`);
    }
    return { hospitalId: stored.hospitalId, publicKey: custody.signer.publicKey, custody };
  }

  async configure(onboarding: Onboarding): Promise<void> {
    // Only the hospital id is compared: no custody is opened (an HSM would want its PIN).
    const { hospitalId } = await this.#storedKeys();
    if (hospitalId !== onboarding.hospitalId) {
      throw new UsageError(
        `this configuration is for ${onboarding.hospitalId}, but the keys are ${hospitalId}'s`,
      );
    }
    await writeJsonFile(this.configPath, onboarding);
  }

  /** The connector, acting for the member of staff `staffId`. close() its custody when done. */
  async open(staffId: string): Promise<Connector> {
    // The configuration first: a missing one must not leave a custody (an HSM session) open.
    const config = await readJsonFile(
      this.configPath,
      onboardingSchema,
      'configuration (run `cb-connector configure` first)',
    );
    const identity = await this.identity();
    return {
      ...identity,
      home: this,
      config,
      pairingKey: importPublicKey(config.pairingPublicKey),
      ingestKey: importPublicKey(config.ingestPublicKey),
      api: createApiClient({
        apiBase: config.apiBase,
        signer: {
          keyId: hospitalKeyId(identity.hospitalId, identity.publicKey),
          privateKey: identity.custody.signer,
        },
      }),
      enrolments: await EnrolmentJournal.open(this.enrolmentsPath),
      operator: { staffId, operatorRef: deriveOperatorRef(identity.custody.pseudonymKey, staffId) },
    };
  }

  async journal(): Promise<JournalEntry[]> {
    let text: string;
    try {
      text = await readFile(this.journalPath, 'utf8');
    } catch {
      return [];
    }
    // Later lines for the same upload supersede earlier ones (status updates are appended).
    const byUpload = new Map<string, JournalEntry>();
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const parsed = journalEntrySchema.safeParse(JSON.parse(line));
      if (parsed.success) byUpload.set(parsed.data.uploadId, parsed.data);
    }
    return [...byUpload.values()];
  }

  async record(entry: JournalEntry): Promise<void> {
    if (!(await exists(this.journalPath))) await writePrivateFile(this.journalPath, '');
    await appendFile(this.journalPath, `${JSON.stringify(journalEntrySchema.parse(entry))}\n`);
  }
}
