// A paired TestDevice as the reference device (clients/device) holds it: an enrolment saved in
// a temporary home, so tests can run the device's own sync (list, download, verify, decrypt,
// acknowledge) instead of re-implementing what a phone does with a download.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceHome, type Enrolment } from '../../sdk/index.ts';
import { FileDeviceStore } from '../../sdk/node.ts';
import { exportPrivateKey } from '../../shared/core/crypto/index.ts';
import { toBase64Url } from '../../shared/core/protocol/index.ts';
import type { StackEnv, TestDevice, TestHospital } from './delivery-fixture.ts';

export interface ReferenceDevice {
  readonly home: DeviceHome;
  readonly enrolment: Enrolment;
  /** Where sync writes the records it stores. */
  readonly outDir: string;
}

/** The reference device's home and enrolment for `device`, paired with `hospital`. */
export async function referenceDevice(
  stack: StackEnv,
  hospital: TestHospital,
  device: TestDevice,
): Promise<ReferenceDevice> {
  const dir = await mkdtemp(join(tmpdir(), 'cb-reference-device-'));
  const home = new DeviceHome(new FileDeviceStore(join(dir, 'home')));
  const data = {
    apiBase: stack.env.FUNCTIONS_BASE_URL!,
    hospitalId: hospital.hospitalId,
    hospitalPublicKey: hospital.keys.publicKey.toBase64Url(),
    deviceId: device.deviceId,
    publicKey: device.keys.publicKey.toBase64Url(),
    privateKey: toBase64Url(exportPrivateKey(device.keys.privateKey)),
    certificate: device.certificate,
    fcmToken: device.fcmToken,
    status: 'active' as const,
    pairedAt: new Date().toISOString(),
    lastPushSeq: 0,
    stored: [],
  };
  await home.save(data);
  return {
    home,
    enrolment: { data, keys: device.keys, hospitalKey: hospital.keys.publicKey, api: device.api },
    outDir: join(dir, 'records'),
  };
}
