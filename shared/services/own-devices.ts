// A paired device's view of its patient's devices at its hospital (invariants 6, 9, 10;
// docs/PROTOCOL.md §9.2, §10.5): list them, revoke one (a lost phone, or itself), and replace its own
// push token. A device of another patient or hospital is NOT_FOUND, like one that does not exist.
import type { AuditLog } from '../audit/log.ts';
import {
  deviceIdSchema,
  formatTimestamp,
  parseBoundary,
  parseJsonBody,
  ProtocolError,
  pushTokenBodySchema,
} from '../core/protocol/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { DeviceStore } from '../ports/pairing-store.ts';
import { deviceEvent, type DeviceCaller } from './device-caller.ts';
import { emptyBodySchema } from '../core/protocol/api-contract.ts';
import { sendPushHints } from './push-hints.ts';
import type { SignedCall } from './signed-call.ts';

export interface OwnDevicesServiceOptions {
  readonly caller: DeviceCaller;
  readonly devices: DeviceStore;
  readonly clock: Clock;
  /** The patient's remaining devices are told when one is revoked. */
  readonly notifier?: Notifier;
  /** NEN 7513: revocations are logged. */
  readonly audit: AuditLog;
}

export interface OwnDevice {
  deviceId: string;
  hospitalId: string;
  platform: string;
  pairedAt: string;
  expiresAt: string;
  /** The device asking. */
  current: boolean;
}

export interface OwnDevicesService {
  list(call: SignedCall): Promise<{ devices: OwnDevice[] }>;
  revoke(call: SignedCall, deviceId: string): Promise<{ deviceId: string; revokedAt: string }>;
  setPushToken(call: SignedCall): Promise<void>;
}

export function createOwnDevicesService(options: OwnDevicesServiceOptions): OwnDevicesService {
  const { caller, devices, clock } = options;

  return Object.freeze({
    async list(call: SignedCall) {
      if (call.body.length > 0) parseJsonBody(emptyBodySchema, call.body);
      const device = await caller(call);
      const siblings = await devices.listActive(device.hospitalId, device.patientRef, clock.now());
      return {
        devices: siblings.slice(0, 64).map((sibling) => ({
          deviceId: sibling.deviceId,
          hospitalId: sibling.hospitalId,
          platform: sibling.platform,
          pairedAt: formatTimestamp(sibling.pairedAt),
          expiresAt: formatTimestamp(sibling.expiresAt),
          current: sibling.deviceId === device.deviceId,
        })),
      };
    },

    async revoke(call: SignedCall, deviceId: string) {
      const id = parseBoundary(deviceIdSchema, deviceId);
      parseJsonBody(emptyBodySchema, call.body);
      const device = await caller(call);
      const target = id === device.deviceId ? device : await devices.get(id);
      const now = clock.now();
      if (!target || target.hospitalId !== device.hospitalId || target.patientRef !== device.patientRef) {
        throw new ProtocolError('NOT_FOUND');
      }
      await options.audit.append([
        { fields: deviceEvent(clock, device, 'device.revoked', { deviceId: id }), once: `revoke:${id}` },
      ]);
      if (!(await devices.revoke(device.hospitalId, id, now))) throw new ProtocolError('NOT_FOUND');
      call.logger?.info('device revoked', {
        operation: 'records.revoke',
        deviceId: id,
        hospitalId: device.hospitalId,
      });
      await sendPushHints(
        options.notifier,
        devices,
        await devices.listActive(device.hospitalId, device.patientRef, now),
        'devices',
        call.logger,
      );
      return { deviceId: id, revokedAt: formatTimestamp(now) };
    },

    async setPushToken(call: SignedCall) {
      const body = parseJsonBody(pushTokenBodySchema, call.body);
      const device = await caller(call);
      if (!(await devices.setFcmToken(device.deviceId, body.fcmToken)))
        throw new ProtocolError('DEVICE_REVOKED');
      call.logger?.info('push token replaced', {
        operation: 'records.push-token',
        deviceId: device.deviceId,
      });
    },
  });
}
