// Fault injection into pairing (threat model F1). The pairing service is built over the real
// adapters on the local stack, each wrapped by a FaultPlan; a fault is injected before and after
// every step of a fault-free invitation and pairing, then the caller retries as the real clients
// do (withTransientRetries): the connector signs its request again (a new nonce), the phone
// sends the same pair body again. The retry must succeed and the end state equal the fault-free one: one invitation, one
// active device with the certificate the phone holds, one audit event, at most one extra ping.
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransientRetries } from '../../clients/lib/api-client.ts';
import type { Stack } from '../../emulator/stack.ts';
import { systemClock } from '../../shared/adapters/clock.ts';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import { createFcmNotifier, type FcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import { storedAuditEvents } from '../helpers/audit-logs.ts';
import {
  createFirestorePairingStores,
  PAIRING_COLLECTIONS,
} from '../../shared/adapters/firestore-pairing.ts';
import { generateKeyPair } from '../../shared/core/crypto/index.ts';
import {
  derivePatientRef,
  deriveBindingSecret,
  formatTimestamp,
  hospitalKeyId,
  newInvitationToken,
  newRandomId,
  tokenDigest,
} from '../../shared/core/protocol/index.ts';
import { createPairingService, type PairingService } from '../../shared/services/pairing.ts';
import {
  inviteTestPatient,
  pairBodyFor,
  pairTestDevice,
  pushCount,
  registerTestHospital,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { recordEvidence } from '../helpers/evidence.ts';
import { FaultPlan, faultPointsOf } from '../helpers/faults.ts';
import { signedCall, stackFunctionKeys } from '../helpers/stack-services.ts';
import { useLocalStack } from '../helpers/local-stack.ts';

const INVITE_STEPS = ['hospitals.getHospital', 'nonces.remember', 'invitations.create', 'audit.append'];
const PAIR_STEPS = ['kms.decrypt', 'invitations.consume', 'audit.append', 'devices.listActive', 'fcm.send'];

const encoder = new TextEncoder();

/** Calls as the clients do (clients/lib/api-client.ts), counting the tries. */
async function withRetries<T>(attempt: () => Promise<T>): Promise<{ result: T; tries: number }> {
  let tries = 0;
  const result = await withTransientRetries(
    () => {
      tries++;
      return attempt();
    },
    { delayMs: 0 },
  );
  return { result, tries };
}

describe('F1 faults in pairing, then the client retries', () => {
  const local = useLocalStack('faults-pairing');
  let stack: Stack;
  let firestore: Firestore;
  let notifier: FcmNotifier;
  let hospital: TestHospital;
  const silent = cloudLogger({ functionName: 'pairing', sink: () => undefined });

  beforeAll(async () => {
    ({ stack, firestore } = local);
    notifier = createFcmNotifier({
      projectId: stack.env.GCLOUD_PROJECT!,
      env: stack.env,
      collapseKey: 'devices',
    });
    hospital = await registerTestHospital(firestore, stack, 'st-faults-pairing');
  });

  afterAll(async () => {
    await notifier?.close();
  });

  function pairingService(plan: FaultPlan): PairingService {
    const keys = stackFunctionKeys(stack, firestore, 'pairing', plan);
    const stores = createFirestorePairingStores(firestore);
    return createPairingService({
      stores: {
        hospitals: plan.wrap('hospitals', stores.hospitals),
        invitations: plan.wrap('invitations', stores.invitations),
        devices: plan.wrap('devices', stores.devices),
        nonces: plan.wrap('nonces', stores.nonces),
      },
      clock: systemClock,
      keyPair: () => keys.keyPair(),
      notifier: plan.wrap('fcm', notifier),
      audit: plan.wrap('audit', createFirestoreAuditLog(firestore)),
    });
  }

  async function auditCount(action: string, field: string, id: string): Promise<number> {
    const events = await storedAuditEvents(firestore, { [field]: id, action } as never);
    return events.length;
  }

  /** The connector's invitation call, signed afresh on every try. */
  async function invite(plan: FaultPlan) {
    const service = pairingService(plan);
    const body = {
      invitationId: newRandomId(),
      patientRef: derivePatientRef(hospital.pseudonymKey, `invite-${newRandomId()}`),
      tokenSha256: tokenDigest(newInvitationToken()),
      expiresAt: formatTimestamp(new Date(Date.now() + 15 * 60_000)),
      maxAttempts: 3,
      operatorRef: hospital.operatorRef,
    };
    const connector = {
      keyId: hospitalKeyId(hospital.hospitalId, hospital.keys.publicKey),
      privateKey: hospital.keys.privateKey,
    };
    const { result, tries } = await withRetries(() =>
      service.createInvitation(signedCall(connector, 'POST', '/pairing/v1/invitations', body)),
    );
    const stored = (
      await firestore.collection(PAIRING_COLLECTIONS.invitations).doc(body.invitationId).get()
    ).data();
    return {
      tries,
      answer: result.invitationId === body.invitationId && result.expiresAt === body.expiresAt,
      stored: {
        status: stored?.status,
        attempts: stored?.attempts,
        digest: stored?.tokenSha256 === body.tokenSha256,
      },
      // NEN 7513: the invitation is logged once, naming who made it, however the retry went.
      logged: await auditCount('invitation.created', 'invitationId', body.invitationId),
    };
  }

  /** A patient with one paired phone pairs a second; the phone resends the same body on failure. */
  async function pair(plan: FaultPlan) {
    const patient = `pair-${newRandomId()}`;
    const sibling = await pairTestDevice(stack, hospital, patient);
    const invitation = await inviteTestPatient(hospital, patient);
    const keys = generateKeyPair();
    const body = encoder.encode(JSON.stringify(pairBodyFor(invitation, keys, `fcm-${newRandomId()}`)));
    const pingsBefore = await pushCount(stack, sibling.fcmToken);
    const service = pairingService(plan);
    const { result, tries } = await withRetries(() => service.pair(body, silent));
    const device = (
      await firestore.collection(PAIRING_COLLECTIONS.devices).doc(result.deviceId).get()
    ).data();
    const used = (
      await firestore.collection(PAIRING_COLLECTIONS.invitations).doc(invitation.invitationId).get()
    ).data();
    return {
      tries,
      pings: (await pushCount(stack, sibling.fcmToken)) - pingsBefore,
      state: {
        deviceId: result.deviceId === keys.publicKey.fingerprint,
        status: device?.status,
        certificateHeld: device?.certificate === result.certificate,
        invitation: used?.status,
        pairedEvents: await auditCount('device.paired', 'deviceId', result.deviceId),
        // The binding secret never reaches the platform, retries included.
        bindingSecretStored: JSON.stringify(device).includes(
          Buffer.from(
            deriveBindingSecret(hospital.bindingKey, invitation.invitationId, invitation.patientRef),
          ).toString('base64url'),
        ),
      },
    };
  }

  describe('an invitation', () => {
    it('the fault-free run takes exactly the steps faulted below', async () => {
      const plan = new FaultPlan();
      const outcome = await invite(plan);
      expect(plan.trace).toEqual(INVITE_STEPS);
      expect(outcome).toEqual({
        tries: 1,
        answer: true,
        stored: { status: 'open', attempts: 0, digest: true },
        logged: 1,
      });
    });

    for (const point of faultPointsOf(INVITE_STEPS)) {
      it(`${point.when} ${point.step}: the connector's retry ends where a fault-free run does`, async () => {
        const plan = new FaultPlan(point);
        const outcome = await invite(plan);
        expect(plan.fired).toBe(true);
        expect(outcome).toEqual({
          tries: 2,
          answer: true,
          stored: { status: 'open', attempts: 0, digest: true },
          logged: 1,
        });
        recordEvidence({
          kind: 'fault',
          flow: 'pairing (invitation)',
          point: `${point.when} ${point.step}`,
          outcome: 'retried once, one open invitation',
        });
      });
    }
  });

  describe('a pairing', () => {
    const expected = {
      deviceId: true,
      status: 'active',
      certificateHeld: true,
      invitation: 'used',
      pairedEvents: 1,
      bindingSecretStored: false,
    };

    it('the fault-free run takes exactly the steps faulted below', async () => {
      const plan = new FaultPlan();
      const outcome = await pair(plan);
      expect(plan.trace).toEqual(PAIR_STEPS);
      expect(outcome).toEqual({ tries: 1, pings: 1, state: expected });
    });

    for (const point of faultPointsOf(PAIR_STEPS)) {
      it(`${point.when} ${point.step}: the phone's retry ends where a fault-free run does`, async () => {
        const plan = new FaultPlan(point);
        const outcome = await pair(plan);
        expect(plan.fired).toBe(true);
        expect(outcome.state).toEqual(expected);
        expect(outcome.pings).toBeLessThanOrEqual(2);
        // A push is a courtesy: when FCM fails, the sibling learns of the new device at its next sync.
        if (point.step !== 'fcm.send' || point.when !== 'before')
          expect(outcome.pings).toBeGreaterThanOrEqual(1);
        recordEvidence({
          kind: 'fault',
          flow: 'pairing (pair)',
          point: `${point.when} ${point.step}`,
          outcome: `${outcome.tries === 1 ? 'no retry needed' : `${outcome.tries} tries`}, end state equal, ${outcome.pings} ping(s) to the sibling`,
        });
      });
    }
  });
});
