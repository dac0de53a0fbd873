// The stores the pairing service works over (invariants 3 and 8): the hospital registry, the
// invitations, the paired devices and the request nonces. Every stored item carries an
// expiry the retention job honours. Invitations hold only the SHA-256 of their one-time token,
// never the token, and nothing here ever holds a binding secret. The Firestore adapter lives
// in shared/adapters/firestore-pairing.ts.
import type { PublicKey } from '../core/crypto/index.ts';

export type HospitalStatus = 'active' | 'suspended';

export interface HospitalRegistration {
  readonly hospitalId: string;
  readonly status: HospitalStatus;
  /** The hospital's public keys, keyed by fingerprint (two may be live while rotating). */
  readonly publicKeys: readonly PublicKey[];
  readonly expiresAt: Date;
}

export interface HospitalRecord {
  readonly hospitalId: string;
  readonly status: HospitalStatus;
  /** base64url public keys by fingerprint. */
  readonly publicKeys: Readonly<Record<string, string>>;
  readonly expiresAt: Date;
}

export interface HospitalRegistry {
  /** Creates or replaces a hospital's registration (tests now, cb-admin later). */
  registerHospital(registration: HospitalRegistration): Promise<void>;
  getHospital(hospitalId: string): Promise<HospitalRecord | undefined>;
  /** Every registered hospital, by id (the operator's view; no secrets are stored here). */
  listHospitals(): Promise<HospitalRecord[]>;
}

export interface NewInvitation {
  readonly invitationId: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly tokenSha256: string;
  readonly maxAttempts: number;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export interface NewDevice {
  readonly deviceId: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly invitationId: string;
  /** base64url of the signed certificate. */
  readonly certificate: string;
  readonly bindingProof: string;
  readonly fcmToken: string;
  readonly platform: string;
  readonly pairedAt: Date;
  readonly expiresAt: Date;
}

export interface DeviceRecord extends NewDevice {
  readonly status: 'active' | 'revoked';
  /** Last signed call to the records API (to within a day); retention removes inactive devices. */
  readonly lastSeenAt: Date;
  readonly revokedAt?: Date;
}

/** How a consumption attempt ended; anything but 'paired' leaves no device behind. */
export type ConsumeOutcome =
  | 'paired'
  | 'INVITATION_INVALID'
  | 'INVITATION_ATTEMPTS_EXCEEDED'
  | 'INVITATION_EXPIRED'
  | 'INVITATION_USED'
  | 'DEVICE_ALREADY_PAIRED'
  | 'DEVICE_LIMIT_REACHED';

/** An invitation as stored, for the pairing rules (shared/services/pairing-rules.ts) to judge. */
export interface StoredInvitation {
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly tokenSha256: string;
  readonly maxAttempts: number;
  /** Wrong tokens tried so far. */
  readonly attempts: number;
  readonly status: 'open' | 'used' | 'locked';
  readonly expiresAt: Date;
  /** The device that used it. */
  readonly usedBy?: string;
}

/** What one consumption reads, all in the same transaction, before anything is decided. */
export interface PairingSnapshot {
  readonly invitation: StoredInvitation | undefined;
  /** Whatever is stored under the asking device's id: any hospital, any status. */
  readonly device: DeviceRecord | undefined;
  /** The invitation's patient's devices still marked active, expired ones included. */
  readonly patientDevices: readonly DeviceRecord[];
}

/** What one consumption writes: all of it, or (the transaction failing) none of it. */
export interface PairingWrites {
  readonly invitation?: {
    readonly attempts?: number;
    readonly status?: 'used' | 'locked';
    readonly usedAt?: Date;
    readonly usedBy?: string;
  };
  readonly newDevice?: NewDevice;
}

export interface PairingDecision {
  readonly outcome: ConsumeOutcome;
  /** The asking device's pairing ('paired' only): new, or the one it made before. */
  readonly device?: NewDevice;
  readonly writes: PairingWrites;
}

export interface InvitationStore {
  /**
   * Create-only: false if the id is taken by another invitation. An identical one (same
   * hospital, patient, token digest, attempts and expiry) is the retry of a create whose answer
   * was lost, and counts as created.
   */
  create(invitation: NewInvitation): Promise<boolean>;
  /**
   * In one transaction: reads the invitation, the asking device's document and the patient's
   * devices, lets `decide` judge them, and performs the writes it returns. A transaction
   * retried on contention reads and decides again.
   */
  consume(
    invitationId: string,
    deviceId: string,
    decide: (snapshot: PairingSnapshot) => PairingDecision,
  ): Promise<PairingDecision>;
}

export interface DeviceStore {
  get(deviceId: string): Promise<DeviceRecord | undefined>;
  /** Active, unexpired devices of one patient at one hospital. */
  listActive(hospitalId: string, patientRef: string, now: Date): Promise<DeviceRecord[]>;
  /** Marks a device revoked; false if it is not an active device of this hospital. */
  revoke(hospitalId: string, deviceId: string, at: Date): Promise<boolean>;
  /** Forgets a push token FCM reported dead, if the device still has it. */
  clearFcmToken(deviceId: string, fcmToken: string): Promise<void>;
  /** Replaces an active device's push token (the app's token rotated); false if not active. */
  setFcmToken(deviceId: string, fcmToken: string): Promise<boolean>;
  /** Records that the device was active at `at` (a no-op for a device that is gone). */
  touch(deviceId: string, at: Date): Promise<void>;
}

export interface NonceStore {
  /** Create-only: false if this nonce of this key is already remembered (a replay). */
  remember(keyId: string, nonce: string, expiresAt: Date): Promise<boolean>;
}

export interface PairingStores {
  readonly hospitals: HospitalRegistry;
  readonly invitations: InvitationStore;
  readonly devices: DeviceStore;
  readonly nonces: NonceStore;
}
