// The pairing service (invariants 3, 6, 8, 9): invitations from hospitals, pairing of devices
// with proof of possession, the hospital's view of a patient's devices, and revocation. Logic
// over ports only; the composition root in functions/pairing wires the adapters.
import type { KeyPair } from '../core/crypto/index.ts';
import type { AuditLog } from '../audit/log.ts';
import type { Clock } from '../ports/clock.ts';
import type { Logger } from '../ports/logger.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { DeviceRecord, PairingStores } from '../ports/pairing-store.ts';
import {
  ProtocolError,
  certificateFor,
  createInvitationRequestSchema,
  hospitalActionBodySchema,
  formatTimestamp,
  fromBase64Url,
  pairBodySchema,
  parseBoundary,
  parseJsonBody,
  patientRefSchema,
  deviceIdSchema,
  LINKED_DEVICE_CERTIFICATE_TYPE,
  readLinkerCertificate,
  signDeviceCertificate,
  toBase64Url,
  verifyPairRequest,
} from '../core/protocol/index.ts';
import { decidePairing, type DeviceBuilder } from './pairing-rules.ts';
import { sendPushHints } from './push-hints.ts';
import { createHospitalCaller, type SignedCall } from './signed-call.ts';

export type { SignedCall } from './signed-call.ts';

/** Bodies that must be the empty object (revoke). */

export const PAIRING_DEFAULTS = {
  /** Longest an invitation may live (the protocol asks for minutes to hours). */
  maxInvitationLifetimeMs: 7 * 24 * 3600 * 1000,
  /** How long a device certificate (and the device record) is valid. */
  deviceLifetimeMs: 365 * 24 * 3600 * 1000,
  /** Active devices one patient may have at one hospital (the device list holds at most 64). */
  maxDevicesPerPatient: 10,
} as const;

export interface PairingServiceOptions {
  readonly stores: PairingStores;
  readonly clock: Clock;
  /** The pairing function's own key pair (certificates are signed with it). */
  readonly keyPair: () => Promise<KeyPair>;
  readonly notifier?: Notifier;
  /** NEN 7513: pairings and revocations are logged. */
  readonly audit: AuditLog;
  readonly limits?: Partial<typeof PAIRING_DEFAULTS>;
}

export interface PairingService {
  createInvitation(call: SignedCall): Promise<{ invitationId: string; expiresAt: string }>;
  pair(
    body: Uint8Array,
    logger?: Logger,
  ): Promise<{ deviceId: string; certificate: string; expiresAt: string }>;
  listDevices(
    call: SignedCall,
    patientRef: string,
  ): Promise<{ devices: { deviceId: string; certificate: string }[] }>;
  revokeDevice(call: SignedCall, deviceId: string): Promise<{ deviceId: string; revokedAt: string }>;
}

/** Enrolled by a link (§17) rather than an invitation: its certificate says so. */
function isLinkedDevice(device: DeviceRecord): boolean {
  const signed = fromBase64Url(device.certificate);
  return signed !== undefined && readLinkerCertificate(signed).type === LINKED_DEVICE_CERTIFICATE_TYPE;
}

export function createPairingService(options: PairingServiceOptions): PairingService {
  const { stores, clock } = options;
  const limits = { ...PAIRING_DEFAULTS, ...options.limits };

  /** Verifies a hospital-signed call; returns the hospital id. */
  const hospitalOf = createHospitalCaller({ hospitals: stores.hospitals, clock, nonces: stores.nonces });

  return Object.freeze({
    async createInvitation(call: SignedCall) {
      // Parse before verifying so a malformed body never spends a nonce; the signature covers
      // the same bytes either way.
      const body = parseJsonBody(createInvitationRequestSchema, call.body);
      const hospitalId = await hospitalOf(call);
      const now = clock.now();
      const expiresAt = new Date(body.expiresAt);
      if (expiresAt <= now || expiresAt.getTime() - now.getTime() > limits.maxInvitationLifetimeMs) {
        throw new ProtocolError('INVALID_REQUEST', 'the expiry is outside the allowed range', {
          field: 'expiresAt',
        });
      }
      const created = await stores.invitations.create({
        invitationId: body.invitationId,
        hospitalId,
        patientRef: body.patientRef,
        tokenSha256: body.tokenSha256,
        maxAttempts: body.maxAttempts,
        createdAt: now,
        expiresAt,
      });
      if (!created) throw new ProtocolError('CONFLICT');
      // After the write, so only an invitation that exists is logged; once-keyed, so the retry
      // of a lost answer (an identical invitation counts as created) logs it once.
      await options.audit.append([
        {
          fields: {
            at: formatTimestamp(now),
            actor: { kind: 'hospital', id: hospitalId },
            action: 'invitation.created',
            hospitalId,
            patientRef: body.patientRef,
            invitationId: body.invitationId,
            operatorRef: body.operatorRef,
          },
          once: `invitation:${body.invitationId}`,
        },
      ]);
      call.logger?.info('invitation created', { hospitalId, invitationId: body.invitationId });
      return { invitationId: body.invitationId, expiresAt: formatTimestamp(expiresAt) };
    },

    async pair(rawBody: Uint8Array, logger?: Logger) {
      const body = parseJsonBody(pairBodySchema, rawBody);
      const signed = fromBase64Url(body.pairRequest);
      if (signed === undefined)
        throw new ProtocolError('INVALID_REQUEST', undefined, { field: 'pairRequest' });
      const keyPair = await options.keyPair(); // also loads Themis
      const now = clock.now();
      const { request } = verifyPairRequest(signed, body.token, now);
      const expiresAt = new Date(now.getTime() + limits.deviceLifetimeMs);
      const ask = {
        invitationId: request.invitationId,
        deviceId: request.deviceId,
        tokenSha256: request.tokenSha256,
        now,
        maxDevicesPerPatient: limits.maxDevicesPerPatient,
      };
      const buildDevice: DeviceBuilder = (invitation) => ({
        deviceId: request.deviceId,
        hospitalId: invitation.hospitalId,
        patientRef: invitation.patientRef,
        invitationId: request.invitationId,
        certificate: toBase64Url(
          signDeviceCertificate(
            certificateFor(request, invitation, { issuedAt: now, expiresAt }),
            keyPair.privateKey,
          ),
        ),
        bindingProof: request.bindingProof,
        fcmToken: request.fcmToken,
        platform: request.platform,
        pairedAt: now,
        expiresAt,
      });
      const result = await stores.invitations.consume(request.invitationId, request.deviceId, (snapshot) =>
        decidePairing(snapshot, ask, buildDevice),
      );
      if (result.outcome !== 'paired' || !result.device) {
        const outcome = result.outcome === 'paired' ? 'INTERNAL_ERROR' : result.outcome;
        logger?.notice('pairing refused', { invitationId: request.invitationId, code: outcome });
        throw new ProtocolError(outcome);
      }
      const device = result.device;
      await options.audit.append([
        {
          fields: {
            at: formatTimestamp(now),
            actor: { kind: 'device', id: device.deviceId },
            action: 'device.paired',
            hospitalId: device.hospitalId,
            patientRef: device.patientRef,
            deviceId: device.deviceId,
            invitationId: device.invitationId,
          },
          once: `paired:${device.deviceId}`,
        },
      ]);
      logger?.info('device paired', {
        hospitalId: device.hospitalId,
        deviceId: device.deviceId,
        invitationId: device.invitationId,
      });
      const others = (await stores.devices.listActive(device.hospitalId, device.patientRef, now)).filter(
        (other) => other.deviceId !== device.deviceId,
      );
      await sendPushHints(options.notifier, stores.devices, others, 'devices', logger);
      return {
        deviceId: device.deviceId,
        certificate: device.certificate,
        expiresAt: formatTimestamp(device.expiresAt),
      };
    },

    async listDevices(call: SignedCall, patientRef: string) {
      const ref = parseBoundary(patientRefSchema, patientRef);
      const hospitalId = await hospitalOf(call);
      // Paired devices only: a linked one has no invitation or binding proof for the connector's
      // journal to check (§10.3), so it is listed with its link at …/device-links instead (§17).
      const devices = (await stores.devices.listActive(hospitalId, ref, clock.now())).filter(
        (device) => !isLinkedDevice(device),
      );
      return {
        devices: devices
          .slice(0, 64)
          .map((device) => ({ deviceId: device.deviceId, certificate: device.certificate })),
      };
    },

    async revokeDevice(call: SignedCall, deviceId: string) {
      const id = parseBoundary(deviceIdSchema, deviceId);
      const { operatorRef } = parseJsonBody(hospitalActionBodySchema, call.body);
      const hospitalId = await hospitalOf(call);
      const device = await stores.devices.get(id);
      const now = clock.now();
      if (!device || device.hospitalId !== hospitalId || device.status !== 'active') {
        throw new ProtocolError('NOT_FOUND');
      }
      await options.audit.append([
        {
          fields: {
            at: formatTimestamp(now),
            actor: { kind: 'hospital', id: hospitalId },
            action: 'device.revoked',
            hospitalId,
            patientRef: device.patientRef,
            deviceId: id,
            operatorRef,
          },
          once: `revoke:${id}`,
        },
      ]);
      if (!(await stores.devices.revoke(hospitalId, id, now))) throw new ProtocolError('NOT_FOUND');
      call.logger?.info('device revoked', { hospitalId, deviceId: id });
      await sendPushHints(
        options.notifier,
        stores.devices,
        await stores.devices.listActive(hospitalId, device.patientRef, now),
        'devices',
        call.logger,
      );
      return { deviceId: id, revokedAt: formatTimestamp(now) };
    },
  });
}
