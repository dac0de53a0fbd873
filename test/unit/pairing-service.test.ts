// The pairing service over in-memory ports and a ManualClock: time-dependent rules (invitation
// lifetime and expiry, pair request freshness, hospital registration expiry) and push hints.
// The Firestore adapters and the HTTP edge are covered by test/integration/pairing.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../shared/adapters/clock.ts';
import { sealAuditEvent, type SealedAuditEvent } from '../../shared/audit/fields.ts';
import type { AuditLog } from '../../shared/audit/log.ts';
import { generateKeyPair, type KeyPair } from '../../shared/core/crypto/index.ts';
import type { Notifier, PushOutcome } from '../../shared/ports/notifier.ts';
import type {
  DeviceRecord,
  HospitalRecord,
  PairingStores,
  StoredInvitation,
} from '../../shared/ports/pairing-store.ts';
import {
  bindingProofText,
  deriveBindingSecret,
  memoryHmacKey,
  formatTimestamp,
  hospitalKeyId,
  isProtocolError,
  newInvitationToken,
  newRandomId,
  PAIR_REQUEST_TYPE,
  signPairRequest,
  signRequest,
  toBase64Url,
  tokenDigest,
  type ErrorCode,
} from '../../shared/core/protocol/index.ts';
import { createPairingService, type PairingService } from '../../shared/services/pairing.ts';

const HOSPITAL = 'unit-hospital';

function memoryStores(): PairingStores & { deviceMap: Map<string, DeviceRecord> } {
  const hospitals = new Map<string, HospitalRecord>();
  const invitations = new Map<string, StoredInvitation & { usedAt?: Date }>();
  const deviceMap = new Map<string, DeviceRecord>();
  const nonces = new Set<string>();
  const active = (hospitalId: string, patientRef: string, now: Date) =>
    [...deviceMap.values()].filter(
      (d) =>
        d.hospitalId === hospitalId &&
        d.patientRef === patientRef &&
        d.status === 'active' &&
        d.expiresAt > now,
    );
  return {
    deviceMap,
    hospitals: {
      async registerHospital(r) {
        hospitals.set(r.hospitalId, {
          hospitalId: r.hospitalId,
          status: r.status,
          publicKeys: Object.fromEntries(r.publicKeys.map((k) => [k.fingerprint, k.toBase64Url()])),
          expiresAt: r.expiresAt,
        });
      },
      async getHospital(id) {
        return hospitals.get(id);
      },
      async listHospitals() {
        return [...hospitals.values()];
      },
    },
    invitations: {
      async create(invitation) {
        if (invitations.has(invitation.invitationId)) return false;
        invitations.set(invitation.invitationId, { ...invitation, attempts: 0, status: 'open' });
        return true;
      },
      async consume(invitationId, deviceId, decide) {
        const invitation = invitations.get(invitationId);
        const decision = decide({
          invitation,
          device: deviceMap.get(deviceId),
          patientDevices: invitation ? active(invitation.hospitalId, invitation.patientRef, new Date(0)) : [],
        });
        const { writes } = decision;
        if (invitation && writes.invitation)
          invitations.set(invitationId, { ...invitation, ...writes.invitation });
        if (writes.newDevice) {
          const device = writes.newDevice;
          deviceMap.set(device.deviceId, { ...device, status: 'active', lastSeenAt: device.pairedAt });
        }
        return decision;
      },
    },
    devices: {
      async get(id) {
        return deviceMap.get(id);
      },
      async listActive(hospitalId, patientRef, now) {
        return active(hospitalId, patientRef, now);
      },
      async revoke(hospitalId, id, at) {
        const d = deviceMap.get(id);
        if (!d || d.hospitalId !== hospitalId || d.status !== 'active') return false;
        deviceMap.set(id, { ...d, status: 'revoked', revokedAt: at });
        return true;
      },
      async clearFcmToken(id, token) {
        const d = deviceMap.get(id);
        if (d?.fcmToken === token) deviceMap.set(id, { ...d, fcmToken: '' });
      },
      async touch(id, at) {
        const d = deviceMap.get(id);
        if (d) deviceMap.set(id, { ...d, lastSeenAt: at });
      },
      async setFcmToken(id, token) {
        const d = deviceMap.get(id);
        if (d?.status !== 'active') return false;
        deviceMap.set(id, { ...d, fcmToken: token });
        return true;
      },
    },
    nonces: {
      async remember(keyId, nonce) {
        const key = `${keyId} ${nonce}`;
        if (nonces.has(key)) return false;
        nonces.add(key);
        return true;
      },
    },
  };
}

async function refusal(promise: Promise<unknown>): Promise<ErrorCode | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    if (isProtocolError(error)) return error.code;
    throw error;
  }
}

/** The deployment the service's calls are signed for. */
const AUDIENCE = 'https://api.clinic-bridge.test';
/** The member of staff inviting, as the hospital's pseudonym. */
const OPERATOR_REF = newRandomId();

describe('pairing service', () => {
  let hospital: KeyPair;
  let pairingKeys: KeyPair;
  let clock: ManualClock;
  let stores: ReturnType<typeof memoryStores>;
  let service: PairingService;
  const pushes: { token: string; data: Record<string, string> }[] = [];
  const dead = new Set<string>();
  // The audit port in memory (this unit test has no services): the real sealing, kept in a list.
  const audited: SealedAuditEvent[] = [];
  const audit: AuditLog = {
    async append(entries) {
      const fresh = entries.filter(
        (e) => e.once === undefined || !audited.some((a) => onceKeys.get(a) === e.once),
      );
      for (const entry of fresh) {
        const sealed = sealAuditEvent(entry.fields);
        onceKeys.set(sealed, entry.once);
        audited.push(sealed);
      }
    },
    forPatient: async () => [],
  };
  const onceKeys = new Map<SealedAuditEvent, string | undefined>();
  const notifier: Notifier = {
    async send(token, data): Promise<PushOutcome> {
      pushes.push({ token, data: { ...data } });
      return dead.has(token) ? 'unregistered' : 'sent';
    },
  };

  beforeAll(async () => {
    hospital = generateKeyPair();
    pairingKeys = generateKeyPair();
    clock = new ManualClock('2030-01-01T00:00:00Z');
    stores = memoryStores();
    await stores.hospitals.registerHospital({
      hospitalId: HOSPITAL,
      status: 'active',
      publicKeys: [hospital.publicKey],
      expiresAt: new Date('2031-01-01T00:00:00Z'),
    });
    service = createPairingService({ stores, clock, keyPair: async () => pairingKeys, notifier, audit });
  });

  function call(method: string, path: string, json?: unknown) {
    const body = json === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(json));
    const target = `/pairing${path}`;
    const headers = signRequest({
      audience: AUDIENCE,
      method,
      target,
      body,
      keyId: hospitalKeyId(HOSPITAL, hospital.publicKey),
      privateKey: hospital.privateKey,
      now: clock.now(),
    });
    return { audience: AUDIENCE, method, target, body, headers };
  }

  async function invite(lifetimeMs = 600_000, patientRef = newRandomId()) {
    const invitationId = newRandomId();
    const token = newInvitationToken();
    const expiresAt = formatTimestamp(new Date(clock.now().getTime() + lifetimeMs));
    await service.createInvitation(
      call('POST', '/v1/invitations', {
        invitationId,
        patientRef,
        tokenSha256: tokenDigest(token),
        expiresAt,
        maxAttempts: 3,
        operatorRef: OPERATOR_REF,
      }),
    );
    return {
      invitationId,
      patientRef,
      token,
      secret: deriveBindingSecret(memoryHmacKey(new Uint8Array(32).fill(7), 1), invitationId, patientRef),
    };
  }

  function pairBody(
    inv: Awaited<ReturnType<typeof invite>>,
    issuedAt = clock.now(),
    fcmToken = `fcm-${newRandomId()}`,
  ) {
    const device = generateKeyPair();
    const signed = signPairRequest(
      {
        type: PAIR_REQUEST_TYPE,
        invitationId: inv.invitationId,
        tokenSha256: tokenDigest(inv.token),
        devicePublicKey: device.publicKey.toBase64Url(),
        deviceId: device.publicKey.fingerprint,
        bindingProof: bindingProofText(inv.secret, inv.invitationId, device.publicKey),
        fcmToken,
        platform: 'other',
        issuedAt: formatTimestamp(issuedAt),
      },
      device.privateKey,
    );
    return new TextEncoder().encode(JSON.stringify({ token: inv.token, pairRequest: toBase64Url(signed) }));
  }

  it('refuses invitations that expire in the past or too far ahead', async () => {
    expect(await refusal(invite(-1000))).toBe('INVALID_REQUEST');
    expect(await refusal(invite(8 * 24 * 3600 * 1000))).toBe('INVALID_REQUEST');
  });

  it('refuses an invitation once its expiry has passed', async () => {
    const inv = await invite(60_000);
    clock.advance(61_000);
    expect(await refusal(service.pair(pairBody(inv)))).toBe('INVITATION_EXPIRED');
  });

  it('refuses a stale pair request', async () => {
    const inv = await invite();
    expect(await refusal(service.pair(pairBody(inv, new Date(clock.now().getTime() - 301_000))))).toBe(
      'REQUEST_EXPIRED',
    );
    expect(await refusal(service.pair(pairBody(inv)))).toBe('resolved');
  });

  it('hints other devices of the patient and forgets dead push tokens', async () => {
    const first = await invite();
    const paired = await service.pair(pairBody(first, clock.now(), 'fcm-first'));
    const second = await invite(600_000, first.patientRef);
    dead.add('fcm-first');
    pushes.length = 0;
    await service.pair(pairBody(second));
    expect(pushes).toEqual([{ token: 'fcm-first', data: { cb: '1', hint: 'devices' } }]);
    expect(stores.deviceMap.get(paired.deviceId)?.fcmToken).toBe('');
  });

  it('logs the invitation (with who at the hospital made it) and the pairing, ids only, at the injected time', async () => {
    const before = audited.length;
    const invitation = await invite();
    const paired = await service.pair(pairBody(invitation));
    const logged = audited.slice(before);
    const at = clock.now().toISOString().replace('.000Z', 'Z');
    expect(logged.map((e) => e.fields)).toEqual([
      {
        at,
        actor: { kind: 'hospital', id: HOSPITAL },
        action: 'invitation.created',
        hospitalId: HOSPITAL,
        patientRef: invitation.patientRef,
        invitationId: invitation.invitationId,
        operatorRef: OPERATOR_REF,
      },
      {
        at,
        actor: { kind: 'device', id: paired.deviceId },
        action: 'device.paired',
        hospitalId: HOSPITAL,
        patientRef: invitation.patientRef,
        deviceId: paired.deviceId,
        invitationId: invitation.invitationId,
      },
    ]);
  });

  it('refuses a hospital whose registration has expired', async () => {
    clock.set('2031-01-01T00:00:01Z');
    expect(
      await refusal(service.listDevices(call('GET', `/v1/patients/${newRandomId()}/devices`), newRandomId())),
    ).toBe('HOSPITAL_SUSPENDED');
  });
});
