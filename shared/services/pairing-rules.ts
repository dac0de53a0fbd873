// The invitation rules (invariant 3; docs/PROTOCOL.md §9.1) as one pure decision over what a
// consumption read: the store's transaction reads, calls decidePairing, and writes what it
// returns, so two concurrent pairs on one invitation are judged one after the other.
import { timingSafeEqual } from 'node:crypto';
import type {
  ConsumeOutcome,
  NewDevice,
  PairingDecision,
  PairingSnapshot,
  PairingWrites,
  StoredInvitation,
} from '../ports/pairing-store.ts';

/** What the asking device presented, and the limits it is judged by. */
export interface PairingAsk {
  readonly invitationId: string;
  readonly deviceId: string;
  readonly tokenSha256: string;
  readonly now: Date;
  readonly maxDevicesPerPatient: number;
}

/** Builds the device to store for the invitation's hospital and patient (signs its certificate). */
export type DeviceBuilder = (invitation: Pick<StoredInvitation, 'hospitalId' | 'patientRef'>) => NewDevice;

function refuse(outcome: Exclude<ConsumeOutcome, 'paired'>, writes: PairingWrites = {}): PairingDecision {
  return { outcome, writes };
}

/** Digests are compared in constant time: the token is the invitation's only secret. */
function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The checks run in this order so that a locked invitation reveals nothing more, and only a
 * holder of the token learns that it expired, was used, or that the patient has too many devices.
 */
export function decidePairing(
  snapshot: PairingSnapshot,
  ask: PairingAsk,
  buildDevice: DeviceBuilder,
): PairingDecision {
  const { invitation } = snapshot;
  if (!invitation) return refuse('INVITATION_INVALID');
  if (invitation.status === 'locked' || invitation.attempts >= invitation.maxAttempts) {
    return refuse('INVITATION_ATTEMPTS_EXCEEDED');
  }
  if (!sameDigest(invitation.tokenSha256, ask.tokenSha256)) {
    // A wrong token is committed even though the pair fails: guesses must add up to the lockout.
    const attempts = invitation.attempts + 1;
    const locked = attempts >= invitation.maxAttempts;
    return refuse('INVITATION_INVALID', {
      invitation: { attempts, ...(locked ? { status: 'locked' } : {}) },
    });
  }
  if (ask.now.getTime() >= invitation.expiresAt.getTime()) return refuse('INVITATION_EXPIRED');
  if (invitation.status === 'used') return pairedBefore(snapshot, invitation, ask);
  if (snapshot.device) return refuse('DEVICE_ALREADY_PAIRED');
  const live = snapshot.patientDevices.filter(
    (device) => device.status === 'active' && device.expiresAt > ask.now,
  ).length;
  if (live >= ask.maxDevicesPerPatient) return refuse('DEVICE_LIMIT_REACHED');
  const device = buildDevice(invitation);
  return {
    outcome: 'paired',
    device,
    writes: { invitation: { status: 'used', usedAt: ask.now, usedBy: device.deviceId }, newDevice: device },
  };
}

/**
 * A phone retrying a pair whose answer was lost gets its own pairing back, as long as it is
 * still the active device this invitation made; anyone else finds the invitation used.
 */
function pairedBefore(
  snapshot: PairingSnapshot,
  invitation: StoredInvitation,
  ask: PairingAsk,
): PairingDecision {
  const { device } = snapshot;
  const same =
    invitation.usedBy === ask.deviceId &&
    device?.status === 'active' &&
    device.invitationId === ask.invitationId;
  return same ? { outcome: 'paired', device, writes: {} } : refuse('INVITATION_USED');
}
