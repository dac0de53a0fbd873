// A device's enrolments, kept in the DeviceStore the app provides (sdk/store.ts). One enrolment
// per hospital (a fresh key pair for each, PROTOCOL.md §2.1), with the hospital key pinned from
// the QR code. The token and binding secret are never stored.
import { z } from 'zod';
import {
  exportPrivateKey,
  importKeyPair,
  importPublicKey,
  type KeyPair,
  type PublicKey,
} from '../shared/core/crypto/index.ts';
import {
  deviceKeyId,
  fromBase64Url,
  hospitalIdSchema,
  publicKeySchema,
  readDeviceLinkUnverified,
  recordIdSchema,
  signingKeyResponseSchema,
  toBase64Url,
  type DeviceLink,
} from '../shared/core/protocol/index.ts';
import { createApiClient, type ApiClient, type ApiClientOptions } from './api-client.ts';
import { DeviceError } from './errors.ts';
import { parseStoredJson, type DeviceStore } from './store.ts';

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
  /**
   * For a phone that joined by device linking (PROTOCOL.md §17): its signed link, which carries
   * the content keys of the records sent before it existed.
   */
  link: z.string().min(1).optional(),
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

/** How the home's API clients reach the service (the Node bins add a reachability check). */
export type ApiClientFactory = (options: ApiClientOptions) => ApiClient;

export const ENROLMENTS = 'enrolments';

/**
 * A linked phone's kept link (its signed form, base64url) as the record opener reads it: already
 * verified when the phone accepted it, so read without checking again.
 */
export function keptLink(text: string): DeviceLink {
  return readDeviceLinkUnverified(fromBase64Url(text) ?? new Uint8Array());
}

/** The name under which the device keeps the audit-log checkpoint it last accepted. */
export function auditLogEntry(hospitalId: string): string {
  return `audit-log/${hospitalId}`;
}

export class DeviceHome {
  readonly store: DeviceStore;
  readonly #clients: ApiClientFactory;

  constructor(store: DeviceStore, clients: ApiClientFactory = createApiClient) {
    this.store = store;
    this.#clients = clients;
  }

  /** A client for `apiBase` made the way this home makes them (unsigned unless given a signer). */
  apiClient(options: ApiClientOptions): ApiClient {
    return this.#clients(options);
  }

  /** Forgets an enrolment: its key is worthless once the platform has erased the device. */
  async remove(hospitalId: string): Promise<void> {
    await this.store.delete(`${ENROLMENTS}/${hospitalId}`);
    await this.store.delete(auditLogEntry(hospitalId));
  }

  async save(data: StoredEnrolment): Promise<void> {
    await this.store.set(
      `${ENROLMENTS}/${data.hospitalId}`,
      JSON.stringify(enrolmentSchema.parse(data), null, 2),
    );
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

  /**
   * Keeps a new enrolment (paired or linked) with the records function's key fetched beside it:
   * erasure receipts verify with it.
   */
  async enrol(
    fields: Omit<
      StoredEnrolment,
      'publicKey' | 'privateKey' | 'status' | 'lastPushSeq' | 'stored' | 'recordsPublicKey'
    >,
    keys: KeyPair,
  ): Promise<void> {
    const signingKey = await this.apiClient({ apiBase: fields.apiBase }).call(
      { method: 'GET', target: '/records/v1/signing-key' },
      signingKeyResponseSchema,
    );
    await this.create({ ...fields, recordsPublicKey: signingKey.publicKey }, keys);
  }

  async hospitals(): Promise<string[]> {
    return (await this.store.list(ENROLMENTS)).sort();
  }

  /** The enrolment for `hospitalId`, or the only one when none is named. */
  async open(hospitalId?: string): Promise<Enrolment> {
    const known = await this.hospitals();
    const id = hospitalId ?? (known.length === 1 ? known[0] : undefined);
    if (id === undefined) {
      throw known.length === 0
        ? new DeviceError('NOT_PAIRED', 'not paired yet')
        : new DeviceError('HOSPITAL_NOT_CHOSEN', `paired with ${known.join(', ')}: pick one`);
    }
    const text = known.includes(id) ? await this.store.get(`${ENROLMENTS}/${id}`) : undefined;
    if (text === undefined) throw new DeviceError('NOT_PAIRED', `not paired with ${id}`);
    const data = parseStoredJson(text, enrolmentSchema);
    if (data === undefined) {
      throw new DeviceError('ENROLMENT_UNREADABLE', `the enrolment for ${id} is not readable`);
    }
    const keys = importKeyPair(data.privateKey, data.publicKey);
    return {
      data,
      keys,
      hospitalKey: importPublicKey(data.hospitalPublicKey),
      api: this.#clients({
        apiBase: data.apiBase,
        signer: { keyId: deviceKeyId(data.deviceId), privateKey: keys.privateKey },
      }),
    };
  }
}
