// The invitation rules as the pure decision the pairing store's transaction runs: no services,
// no stores, no keys. The Firestore transaction around it is covered by
// test/integration/pairing.test.ts and test/security/attacks-pairing.test.ts.
import { describe, expect, it } from 'vitest';
import type {
  DeviceRecord,
  NewDevice,
  PairingSnapshot,
  StoredInvitation,
} from '../../shared/ports/pairing-store.ts';
import { decidePairing, type DeviceBuilder, type PairingAsk } from '../../shared/services/pairing-rules.ts';

const NOW = new Date('2030-01-01T12:00:00Z');
const LATER = new Date('2030-01-02T12:00:00Z');
const INVITATION_ID = 'invitation-1';
const DEVICE_ID = 'device-asking';

const openInvitation: StoredInvitation = {
  hospitalId: 'hospital-a',
  patientRef: 'patient-1',
  tokenSha256: 'right-digest',
  maxAttempts: 3,
  attempts: 0,
  status: 'open',
  expiresAt: LATER,
};

const ask: PairingAsk = {
  invitationId: INVITATION_ID,
  deviceId: DEVICE_ID,
  tokenSha256: 'right-digest',
  now: NOW,
  maxDevicesPerPatient: 2,
};

const built: DeviceBuilder = (invitation): NewDevice => ({
  deviceId: DEVICE_ID,
  hospitalId: invitation.hospitalId,
  patientRef: invitation.patientRef,
  invitationId: INVITATION_ID,
  certificate: 'certificate',
  bindingProof: 'proof',
  fcmToken: 'token',
  platform: 'android',
  pairedAt: NOW,
  expiresAt: LATER,
});

function storedDevice(deviceId: string, changes: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    ...built(openInvitation),
    deviceId,
    invitationId: `invitation-of-${deviceId}`,
    status: 'active',
    lastSeenAt: NOW,
    ...changes,
  };
}

function snapshot(changes: Partial<PairingSnapshot> = {}): PairingSnapshot {
  return { invitation: openInvitation, device: undefined, patientDevices: [], ...changes };
}

function invitation(changes: Partial<StoredInvitation>): StoredInvitation {
  return { ...openInvitation, ...changes };
}

/** A builder that must not be reached: a refused pair signs no certificate. */
const unreachable: DeviceBuilder = () => {
  throw new Error('a device was built for a refused pair');
};

describe('pairing rules', () => {
  it('pairs with the right token: the invitation is used by this device, which is created', () => {
    const decision = decidePairing(snapshot(), ask, built);
    expect(decision.outcome).toBe('paired');
    expect(decision.device).toEqual(built(openInvitation));
    expect(decision.writes).toEqual({
      invitation: { status: 'used', usedAt: NOW, usedBy: DEVICE_ID },
      newDevice: built(openInvitation),
    });
  });

  it('refuses an invitation that does not exist, writing nothing', () => {
    expect(decidePairing(snapshot({ invitation: undefined }), ask, unreachable)).toEqual({
      outcome: 'INVITATION_INVALID',
      writes: {},
    });
  });

  it('counts a wrong token, and locks the invitation at the last allowed attempt', () => {
    const wrong = { ...ask, tokenSha256: 'wrong-digest' };
    expect(decidePairing(snapshot(), wrong, unreachable)).toEqual({
      outcome: 'INVITATION_INVALID',
      writes: { invitation: { attempts: 1 } },
    });
    expect(decidePairing(snapshot({ invitation: invitation({ attempts: 2 }) }), wrong, unreachable)).toEqual({
      outcome: 'INVITATION_INVALID',
      writes: { invitation: { attempts: 3, status: 'locked' } },
    });
  });

  it('refuses a locked or exhausted invitation even with the right token, writing nothing', () => {
    for (const exhausted of [invitation({ status: 'locked' }), invitation({ attempts: 3 })]) {
      expect(decidePairing(snapshot({ invitation: exhausted }), ask, unreachable)).toEqual({
        outcome: 'INVITATION_ATTEMPTS_EXCEEDED',
        writes: {},
      });
    }
  });

  it('judges the token before the expiry: a guesser learns nothing about an expired invitation', () => {
    const expired = snapshot({ invitation: invitation({ expiresAt: NOW }) });
    expect(decidePairing(expired, ask, unreachable)).toEqual({ outcome: 'INVITATION_EXPIRED', writes: {} });
    expect(decidePairing(expired, { ...ask, tokenSha256: 'wrong-digest' }, unreachable).outcome).toBe(
      'INVITATION_INVALID',
    );
  });

  it('answers the device that used the invitation with its own pairing again, writing nothing', () => {
    const mine = storedDevice(DEVICE_ID, { invitationId: INVITATION_ID });
    const used = snapshot({ invitation: invitation({ status: 'used', usedBy: DEVICE_ID }), device: mine });
    expect(decidePairing(used, ask, unreachable)).toEqual({ outcome: 'paired', device: mine, writes: {} });
  });

  it('refuses a used invitation to any other device, or to its device once revoked', () => {
    const usedByOther = invitation({ status: 'used', usedBy: 'device-other' });
    expect(decidePairing(snapshot({ invitation: usedByOther }), ask, unreachable)).toEqual({
      outcome: 'INVITATION_USED',
      writes: {},
    });
    const usedByMe = invitation({ status: 'used', usedBy: DEVICE_ID });
    const revoked = storedDevice(DEVICE_ID, { invitationId: INVITATION_ID, status: 'revoked' });
    const fromElsewhere = storedDevice(DEVICE_ID);
    for (const device of [revoked, fromElsewhere, undefined]) {
      expect(decidePairing(snapshot({ invitation: usedByMe, device }), ask, unreachable).outcome).toBe(
        'INVITATION_USED',
      );
    }
  });

  it('refuses a device key that is already stored, whatever its state', () => {
    const revoked = storedDevice(DEVICE_ID, { status: 'revoked' });
    expect(decidePairing(snapshot({ device: revoked }), ask, unreachable)).toEqual({
      outcome: 'DEVICE_ALREADY_PAIRED',
      writes: {},
    });
  });

  it('refuses a patient at the device limit, counting only active unexpired devices', () => {
    const full = [storedDevice('device-1'), storedDevice('device-2')];
    expect(decidePairing(snapshot({ patientDevices: full }), ask, unreachable)).toEqual({
      outcome: 'DEVICE_LIMIT_REACHED',
      writes: {},
    });
    const lapsed = [storedDevice('device-1'), storedDevice('device-2', { expiresAt: NOW })];
    const gone = [storedDevice('device-1'), storedDevice('device-2', { status: 'revoked' })];
    for (const patientDevices of [lapsed, gone]) {
      expect(decidePairing(snapshot({ patientDevices }), ask, built).outcome).toBe('paired');
    }
  });
});
