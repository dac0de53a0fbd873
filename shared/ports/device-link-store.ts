// The store device linking needs (docs/PROTOCOL.md §17): one transaction that reads the signing
// device, the new device's id, the link id, the patient's active devices and the records whose
// keys the link re-wraps, lets the linking rules decide, and writes the new device (with its link)
// and adds it to those records' recipients. A linked device is a device like any other (the
// `devices` collection), so revocation, retention and erasure remove it and its link together.
// The Firestore adapter lives in shared/adapters/firestore-device-links.ts.
import type { DeviceRecord, NewDevice } from './pairing-store.ts';

/** A device enrolled by a link: the signed link travels with it. */
export interface NewLinkedDevice extends NewDevice {
  /** base64url of the signed cb/device-link/v1 document. */
  readonly link: string;
  readonly linkId: string;
  /** The device that signed the link. */
  readonly linkedBy: string;
}

/** What the store knows of a record the link carries a key for. */
export interface LinkedRecordState {
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly recipients: readonly string[];
  readonly expiresAt: Date;
}

/** What one link transaction reads, before anything is decided. */
export interface LinkSnapshot {
  readonly linker: DeviceRecord | undefined;
  /** Whatever is stored under the new device's id, with its link if it has one. */
  readonly target: (DeviceRecord & { readonly link?: string }) | undefined;
  /** Another device was already enrolled with this link id. */
  readonly linkIdTaken: boolean;
  /** The patient's devices marked active, expired ones included. */
  readonly patientDevices: readonly DeviceRecord[];
  /** By record id; undefined where no such record exists. */
  readonly records: ReadonlyMap<string, LinkedRecordState | undefined>;
}

export type LinkOutcome =
  | 'linked'
  | 'LINK_INVALID'
  | 'LINK_REPLAYED'
  | 'LINK_RECORD_INVALID'
  | 'DEVICE_REVOKED'
  | 'DEVICE_ALREADY_PAIRED'
  | 'DEVICE_LIMIT_REACHED';

export interface LinkDecision {
  readonly outcome: LinkOutcome;
  /** 'linked' only: the device to create, or the one an earlier attempt created. */
  readonly device?: NewLinkedDevice | (DeviceRecord & { readonly link?: string });
  /** Create this device and add it to these records' recipients; absent: write nothing. */
  readonly writes?: { readonly device: NewLinkedDevice; readonly recordIds: readonly string[] };
}

export interface LinkAsk {
  readonly linkerId: string;
  readonly deviceId: string;
  readonly linkId: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly recordIds: readonly string[];
}

export interface DeviceLinkStore {
  /** Reads, decides and writes in one transaction (retried on contention: reads and decides again). */
  link(ask: LinkAsk, decide: (snapshot: LinkSnapshot) => LinkDecision): Promise<LinkDecision>;
  /** The signed link (base64url) of each of these devices that was enrolled by one. */
  linksOf(deviceIds: readonly string[]): Promise<ReadonlyMap<string, string>>;
}
