// The linking rules the pairing function's transaction runs (shared/services/device-linking.ts
// decideLink): every refusal is one stable code and writes nothing; only a link that passes every
// rule creates the device and adds it to exactly the records it carries keys for.
import { describe, expect, it } from 'vitest';
import type { DeviceLink } from '../../shared/core/protocol/index.ts';
import type {
  LinkedRecordState,
  LinkSnapshot,
  NewLinkedDevice,
} from '../../shared/ports/device-link-store.ts';
import type { DeviceRecord } from '../../shared/ports/pairing-store.ts';
import { decideLink } from '../../shared/services/device-linking.ts';

const now = new Date('2026-02-01T10:00:00Z');
const later = new Date('2027-01-01T00:00:00Z');
const id = (c: string) => c.repeat(43);
const ref = (c: string) => c.repeat(22);

const linkerId = id('A');
const newId = id('N');
const recordId = ref('r');

const link = {
  type: 'cb/device-link/v1',
  linkId: id('L'),
  hospitalId: 'st-example-zh',
  patientRef: ref('p'),
  linkedBy: linkerId,
  linkedByCertificate: 'CERT-A',
  deviceId: newId,
  keys: [{ recordId, wrappedKey: 'w' }],
} as unknown as DeviceLink;

function device(deviceId: string, overrides: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    deviceId,
    hospitalId: 'st-example-zh',
    patientRef: ref('p'),
    invitationId: ref('i'),
    certificate: 'CERT-A',
    bindingProof: '',
    fcmToken: '',
    platform: 'android',
    pairedAt: now,
    lastSeenAt: now,
    expiresAt: later,
    status: 'active',
    ...overrides,
  };
}

const newDevice = {
  ...device(newId, { certificate: 'CERT-N' }),
  link: 'SIGNED',
  linkId: id('L'),
  linkedBy: linkerId,
} as NewLinkedDevice;

function record(overrides: Partial<LinkedRecordState> = {}): LinkedRecordState {
  return {
    hospitalId: 'st-example-zh',
    patientRef: ref('p'),
    recipients: [linkerId],
    expiresAt: later,
    ...overrides,
  };
}

function snapshot(overrides: Partial<LinkSnapshot> = {}): LinkSnapshot {
  return {
    linker: device(linkerId),
    target: undefined,
    linkIdTaken: false,
    patientDevices: [device(linkerId)],
    records: new Map([[recordId, record()]]),
    ...overrides,
  };
}

const decide = (s: LinkSnapshot, maxDevices = 10) =>
  decideLink(s, { link, signedText: 'SIGNED', device: newDevice, maxDevices, now });

describe('decideLink', () => {
  it('links, writing the device and exactly the carried records', () => {
    const decision = decide(snapshot());
    expect(decision.outcome).toBe('linked');
    expect(decision.writes).toEqual({ device: newDevice, recordIds: [recordId] });
  });

  it.each<[string, Partial<LinkSnapshot>, string]>([
    ['an unknown signer', { linker: undefined }, 'LINK_INVALID'],
    ['a revoked signer', { linker: device(linkerId, { status: 'revoked' }) }, 'DEVICE_REVOKED'],
    ['an expired signer', { linker: device(linkerId, { expiresAt: now }) }, 'DEVICE_REVOKED'],
    ['a signer of another patient', { linker: device(linkerId, { patientRef: ref('q') }) }, 'LINK_INVALID'],
    [
      'a signer whose certificate is not the one named',
      { linker: device(linkerId, { certificate: 'X' }) },
      'LINK_INVALID',
    ],
    ['a key already enrolled', { target: device(newId) }, 'DEVICE_ALREADY_PAIRED'],
    ['a replayed link id', { linkIdTaken: true }, 'LINK_REPLAYED'],
    ['a missing record', { records: new Map([[recordId, undefined]]) }, 'LINK_RECORD_INVALID'],
    [
      'an expired record',
      { records: new Map([[recordId, record({ expiresAt: now })]]) },
      'LINK_RECORD_INVALID',
    ],
    [
      "another patient's record",
      { records: new Map([[recordId, record({ patientRef: ref('q') })]]) },
      'LINK_RECORD_INVALID',
    ],
    [
      'a record the signer cannot open',
      { records: new Map([[recordId, record({ recipients: [id('B')] })]]) },
      'LINK_RECORD_INVALID',
    ],
  ])('refuses %s without writing anything', (_what, overrides, code) => {
    const decision = decide(snapshot(overrides));
    expect(decision.outcome).toBe(code);
    expect(decision.writes).toBeUndefined();
  });

  it('refuses a patient at the device limit', () => {
    const full = Array.from({ length: 3 }, (_, i) => device(id(String(i))));
    expect(decide(snapshot({ patientDevices: full }), 3).outcome).toBe('DEVICE_LIMIT_REACHED');
    // Revoked and expired devices do not count.
    const stale = [device(id('1'), { status: 'revoked' }), device(id('2'), { expiresAt: now })];
    expect(decide(snapshot({ patientDevices: [...stale, device(linkerId)] }), 2).outcome).toBe('linked');
  });

  it('hands a retry of the same link its enrolment back, writing nothing', () => {
    const stored = { ...device(newId, { certificate: 'CERT-N' }), link: 'SIGNED' };
    const decision = decide(snapshot({ target: stored }));
    expect(decision.outcome).toBe('linked');
    expect(decision.device).toBe(stored);
    expect(decision.writes).toBeUndefined();
  });
});
