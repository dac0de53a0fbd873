// The one way services ping devices (invariant 5): the opaque data-only hint to each device that
// has a push token, dead tokens forgotten, and a failed push logged by code only — a push is a
// courtesy, so it never fails the operation that triggered it.
import type { Logger } from '../ports/logger.ts';
import { isNotifierError, type Notifier } from '../ports/notifier.ts';
import type { DeviceRecord, DeviceStore } from '../ports/pairing-store.ts';
import { pushData, type PushData } from '../core/protocol/index.ts';

export async function sendPushHints(
  notifier: Notifier | undefined,
  devices: DeviceStore,
  targets: readonly DeviceRecord[],
  hint: PushData['hint'],
  logger?: Logger,
): Promise<void> {
  if (!notifier) return;
  await Promise.all(
    targets
      .filter((device) => device.fcmToken !== '')
      .map(async (device) => {
        try {
          if ((await notifier.send(device.fcmToken, pushData(hint))) === 'unregistered') {
            await devices.clearFcmToken(device.deviceId, device.fcmToken);
          }
        } catch (error) {
          logger?.warning('push failed', {
            deviceId: device.deviceId,
            code: isNotifierError(error) ? error.code : 'UNKNOWN',
          });
        }
      }),
  );
}
