// The connector's state directory (inside the hospital): its key pair and master secret
// (owner-only files), the onboarding configuration the operator handed over (API base, bucket
// names, the pairing and ingest public keys it pins), a journal of what it sent, and a work
// directory for ciphertext spools. Patient numbers appear only in the journal, which never
// leaves the hospital.
import { randomBytes } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import {
  generateKeyPair,
  importKeyPair,
  importPublicKey,
  type KeyPair,
  type PublicKey,
} from '../../shared/core/crypto/index.ts';
import { exportPrivateKey } from '../../shared/core/crypto/index.ts';
import {
  contentClassSchema,
  fromBase64Url,
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

const keysSchema = z.strictObject({
  hospitalId: hospitalIdSchema,
  publicKey: publicKeySchema,
  privateKey: z.string().min(1),
  masterSecret: z.string().min(1),
});

export const journalEntrySchema = z.strictObject({
  uploadId: uploadIdSchema,
  recordId: recordIdSchema,
  patientNumber: z.string().min(1),
  file: z.string().min(1),
  contentClass: contentClassSchema,
  mediaType: z.string().min(1),
  title: z.string().optional(),
  sentAt: z.string(),
  status: z.enum(['sent', 'accepted', 'rejected']),
  errorCode: z.string().optional(),
});
export type JournalEntry = z.output<typeof journalEntrySchema>;

export interface ConnectorIdentity {
  readonly hospitalId: string;
  readonly keys: KeyPair;
  readonly masterSecret: Uint8Array;
}

export interface Connector extends ConnectorIdentity {
  readonly home: ConnectorHome;
  readonly config: Onboarding;
  readonly pairingKey: PublicKey;
  readonly ingestKey: PublicKey;
  /** Hospital-signed client for /pairing/v1. */
  readonly api: ApiClient;
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
  get workDir(): string {
    return join(this.dir, 'work');
  }

  /** Generates the hospital key pair and master secret; refuses to replace them unless forced. */
  async createKeys(hospitalId: string, force: boolean): Promise<KeyPair> {
    const id = hospitalIdSchema.safeParse(hospitalId);
    if (!id.success)
      throw new UsageError('the hospital id must be 3–40 of a-z, 0-9 and -, starting alphanumeric');
    if (!force && (await exists(this.keysPath))) {
      throw new UsageError(
        `keys already exist in ${this.dir} (replacing them cuts off every paired device; use --force)`,
      );
    }
    const keys = generateKeyPair();
    await writeJsonFile(this.keysPath, {
      hospitalId: id.data,
      publicKey: keys.publicKey.toBase64Url(),
      privateKey: toBase64Url(exportPrivateKey(keys.privateKey)),
      masterSecret: toBase64Url(new Uint8Array(randomBytes(MIN_MASTER_SECRET_BYTES))),
    });
    return keys;
  }

  async identity(): Promise<ConnectorIdentity> {
    const stored = await readJsonFile(
      this.keysPath,
      keysSchema,
      'hospital keys (run `cb-connector keys` first)',
    );
    const masterSecret = fromBase64Url(stored.masterSecret);
    if (!masterSecret || masterSecret.length < MIN_MASTER_SECRET_BYTES)
      throw new UsageError(`${this.keysPath} is damaged`);
    return {
      hospitalId: stored.hospitalId,
      keys: importKeyPair(stored.privateKey, stored.publicKey),
      masterSecret,
    };
  }

  async configure(onboarding: Onboarding): Promise<void> {
    const identity = await this.identity();
    if (identity.hospitalId !== onboarding.hospitalId) {
      throw new UsageError(
        `this configuration is for ${onboarding.hospitalId}, but the keys are ${identity.hospitalId}'s`,
      );
    }
    await writeJsonFile(this.configPath, onboarding);
  }

  async open(): Promise<Connector> {
    const identity = await this.identity();
    const config = await readJsonFile(
      this.configPath,
      onboardingSchema,
      'configuration (run `cb-connector configure` first)',
    );
    return {
      ...identity,
      home: this,
      config,
      pairingKey: importPublicKey(config.pairingPublicKey),
      ingestKey: importPublicKey(config.ingestPublicKey),
      api: createApiClient({
        apiBase: config.apiBase,
        signer: {
          keyId: hospitalKeyId(identity.hospitalId, identity.keys.publicKey),
          privateKey: identity.keys.privateKey,
        },
      }),
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
