// The reference device's state directory. A real phone keeps the private key in the platform
// keystore (Secure Enclave / Android Keystore); this command-line device keeps it in an
// owner-only file. One enrolment per hospital (a fresh key pair for each, PROTOCOL.md §2.1),
// with the hospital key pinned from the QR code. The token and binding secret are never stored.
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import {
  exportPrivateKey,
  importKeyPair,
  importPublicKey,
  type KeyPair,
  type PublicKey,
} from '../../shared/core/crypto/index.ts';
import {
  deviceKeyId,
  hospitalIdSchema,
  publicKeySchema,
  recordIdSchema,
  toBase64Url,
} from '../../shared/core/protocol/index.ts';
import { createApiClient, type ApiClient } from '../lib/api-client.ts';
import { UsageError } from '../lib/cli.ts';
import { readJsonFile, writeJsonFile } from '../lib/files.ts';

const enrolmentSchema = z.strictObject({
  apiBase: z.string().min(1),
  hospitalId: hospitalIdSchema,
  hospitalPublicKey: publicKeySchema,
  /**
   * The hospital witness's Ed25519 public key from the QR code (base64url): every audit-log
   * checkpoint the device accepts must carry its cosignature. Absent in enrolments made before.
   */
  witnessKey: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/)
    .optional(),
  deviceId: z.string().min(1),
  publicKey: publicKeySchema,
  privateKey: z.string().min(1),
  certificate: z.string().min(1),
  fcmToken: z.string().min(1),
  status: z.enum(['active', 'revoked']),
  /** The records function's key, fetched right after pairing: erasure receipts verify with it. */
  recordsPublicKey: publicKeySchema.optional(),
  pairedAt: z.string(),
  /** The last push sequence seen from the local FCM recorder. */
  lastPushSeq: z.int().min(0),
  /** Records already stored (downloaded, verified, decrypted and acknowledged). */
  stored: z.array(recordIdSchema),
});
export type StoredEnrolment = z.output<typeof enrolmentSchema>;

export interface Enrolment {
  readonly data: StoredEnrolment;
  readonly keys: KeyPair;
  readonly hospitalKey: PublicKey;
  /** Device-signed client for /records/v1. */
  readonly api: ApiClient;
}

export class DeviceHome {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  private path(hospitalId: string): string {
    return join(this.dir, 'enrolments', `${hospitalId}.json`);
  }

  /** Where the device keeps the audit-log checkpoint it last accepted for `hospitalId`. */
  auditLogPath(hospitalId: string): string {
    return join(this.dir, 'audit-log', `${hospitalId}.json`);
  }

  /** Forgets an enrolment: its key is worthless once the platform has erased the device. */
  async remove(hospitalId: string): Promise<void> {
    await rm(this.path(hospitalId), { force: true });
    await rm(this.auditLogPath(hospitalId), { force: true });
  }

  async save(data: StoredEnrolment): Promise<void> {
    await writeJsonFile(this.path(data.hospitalId), enrolmentSchema.parse(data));
  }

  async create(
    fields: Omit<StoredEnrolment, 'publicKey' | 'privateKey' | 'status' | 'lastPushSeq' | 'stored'>,
    keys: KeyPair,
  ): Promise<void> {
    await this.save({
      ...fields,
      publicKey: keys.publicKey.toBase64Url(),
      privateKey: toBase64Url(exportPrivateKey(keys.privateKey)),
      status: 'active',
      lastPushSeq: 0,
      stored: [],
    });
  }

  async hospitals(): Promise<string[]> {
    try {
      return (await readdir(join(this.dir, 'enrolments')))
        .filter((name) => name.endsWith('.json'))
        .map((name) => name.slice(0, -'.json'.length))
        .sort();
    } catch {
      return [];
    }
  }

  /** The enrolment for `hospitalId`, or the only one when none is named. */
  async open(hospitalId?: string): Promise<Enrolment> {
    const known = await this.hospitals();
    const id = hospitalId ?? (known.length === 1 ? known[0] : undefined);
    if (id === undefined) {
      throw new UsageError(
        known.length === 0
          ? `not paired yet (no enrolment in ${this.dir})`
          : `paired with ${known.join(', ')}: pick one with --hospital`,
      );
    }
    if (!known.includes(id)) throw new UsageError(`not paired with ${id}`);
    const data = await readJsonFile(this.path(id), enrolmentSchema, 'enrolment');
    const keys = importKeyPair(data.privateKey, data.publicKey);
    return {
      data,
      keys,
      hospitalKey: importPublicKey(data.hospitalPublicKey),
      api: createApiClient({
        apiBase: data.apiBase,
        signer: { keyId: deviceKeyId(data.deviceId), privateKey: keys.privateKey },
      }),
    };
  }
}
