// The sandbox a real phone can reach (docs/SANDBOX.md): `npm start -- --host 0.0.0.0 --advertise
// <address>` as its own process, the hospital onboarded through the real bins, and a device that
// reaches the stack only through the advertised address: the SDK pairs from the invitation QR code
// as a development build does (`allowDevelopmentStack`), then `cb-device sync` (its long-poll for the
// push, audit log, download, decryption and acknowledgement) runs against that address. The production rule, and so the
// reference device as built, refuses the same QR code. The address is one of this machine's
// private IPv4 addresses, or 127.0.0.2 (still not 127.0.0.1, so still refused in production) on a
// machine that has none.
import { connect } from 'node:net';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceHome, pairFromQr } from '../../sdk/index.ts';
import { FileDeviceStore } from '../../sdk/node.ts';
import { localPushToken } from '../../clients/device/local-push.ts';
import { readQrPng } from '../../clients/lib/qr.ts';
import { spawnStack, type StackProcess } from '../../emulator/process.ts';
import { firstPrivateAddress } from '../../emulator/stack.ts';
import { decodeInvitationQr, DEVELOPMENT_STACK_PATH } from '../../shared/core/protocol/index.ts';
import { binRunner, jsonOutput, writeStackEnvFile, type BinName, type BinOutcome } from '../helpers/bins.ts';
import { protocolCodeOf, protocolCodeOfAsync } from '../helpers/protocol-errors.ts';

const HOSPITAL = 'st-sandbox-zh';
const PATIENT = '123456789';
// CB_SANDBOX_ADVERTISE=127.0.0.2 tries the fallback on a machine that has a private address.
const ADVERTISED = process.env.CB_SANDBOX_ADVERTISE ?? firstPrivateAddress() ?? '127.0.0.2';

/** Resolves with how a TCP connection to host:port ended: 'connected' or the error code. */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? String(error)));
  });
}

describe('a development stack on the local network', { timeout: 180_000 }, () => {
  let dir: string;
  let stack: StackProcess;
  let bin: (name: BinName, args: readonly string[]) => Promise<BinOutcome>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-sandbox-'));
    stack = await spawnStack([
      '--host',
      '0.0.0.0',
      '--advertise',
      ADVERTISED,
      '--port-base',
      '0',
      '--data-dir',
      join(dir, 'stack'),
    ]);
    bin = binRunner(await writeStackEnvFile(stack, dir));
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('advertises what a phone uses at the address and keeps the unauthenticated emulators on loopback', async () => {
    const api = new URL(stack.env.FUNCTIONS_BASE_URL!);
    expect(`${api.protocol}//${api.hostname}${api.pathname}`).toBe(
      `http://${ADVERTISED}${DEVELOPMENT_STACK_PATH}`,
    );
    const fcm = new URL(stack.env.FCM_EMULATOR_URL!);
    expect(fcm.hostname).toBe(ADVERTISED);
    expect(await tryConnect(ADVERTISED, Number(api.port))).toBe('connected');
    expect(await tryConnect(ADVERTISED, Number(fcm.port))).toBe('connected');
    const loopbackOnly = [
      stack.env.FIRESTORE_EMULATOR_HOST!,
      stack.env.KMS_EMULATOR_HOST!,
      new URL(stack.env.STORAGE_EMULATOR_HOST!).host,
    ];
    for (const hostPort of loopbackOnly) {
      const [host, port] = hostPort.split(':');
      expect(host).toBe('127.0.0.1');
      expect({ hostPort, outcome: await tryConnect(ADVERTISED, Number(port)) }).toEqual({
        hostPort,
        outcome: 'ECONNREFUSED',
      });
    }
    expect(stack.stderr()).toContain('DEVELOPMENT STACK');
  });

  it('pairs a development build through the advertised apiBase and syncs a record; a production build refuses the QR code', async () => {
    const connectorHome = join(dir, 'connector');
    const connector = (...args: string[]) => bin('cb-connector', ['--home', connectorHome, ...args]);
    const keys = await connector('keys', '--hospital', HOSPITAL);
    expect(keys.code, keys.stderr).toBe(0);
    const onboarding = jsonOutput<{ apiBase: string }>(
      await bin('cb-admin', [
        'register-hospital',
        '--id',
        HOSPITAL,
        '--public-key',
        keys.stdout.trim(),
        '--json',
      ]),
    );
    // The operator's tool takes the stack's advertised base as the deployment's apiBase.
    expect(onboarding.apiBase).toBe(stack.env.FUNCTIONS_BASE_URL);
    await writeFile(join(dir, 'onboarding.json'), JSON.stringify(onboarding));
    const configured = await connector('configure', '--from', join(dir, 'onboarding.json'));
    expect(configured.code, configured.stderr).toBe(0);
    const png = join(dir, 'invite.png');
    const invited = jsonOutput<{ qrPng: string }>(await connector('invite', PATIENT, '--out', png, '--json'));
    const qrText = await readQrPng(invited.qrPng);

    // Production rules: the reference device as built, and the decoder without the option.
    expect(protocolCodeOf(() => decodeInvitationQr(qrText))).toBe('QR_API_BASE_INVALID');
    const productionHome = join(dir, 'production-device');
    expect(
      await protocolCodeOfAsync(() =>
        pairFromQr(new DeviceHome(new FileDeviceStore(productionHome)), qrText, {
          platform: 'android',
          fcmToken: localPushToken(),
          now: new Date(),
        }),
      ),
    ).toBe('QR_API_BASE_INVALID');
    const refused = await bin('cb-device', ['--home', productionHome, 'pair', png]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('QR_API_BASE_INVALID');
    expect(await stat(join(productionHome, 'enrolments')).catch(() => 'absent')).toBe('absent');

    // A development build: the same code, the option from the build, the SDK's own pairing.
    expect(decodeInvitationQr(qrText, { allowDevelopmentStack: true }).apiBase).toBe(
      stack.env.FUNCTIONS_BASE_URL,
    );
    const deviceHome = join(dir, 'phone');
    const paired = await pairFromQr(new DeviceHome(new FileDeviceStore(deviceHome)), qrText, {
      platform: 'android',
      fcmToken: localPushToken(),
      allowDevelopmentStack: true,
    });
    expect(paired.apiHost).toBe(new URL(stack.env.FUNCTIONS_BASE_URL!).host);
    const deviceId = paired.deviceId;
    // The connector checks the device itself (binding proof, certificate) before it encrypts for it.
    const devices = jsonOutput<{ devices: { deviceId: string; verified: boolean }[] }>(
      await connector('devices', '--patient', PATIENT, '--json'),
    );
    expect(devices.devices).toEqual([expect.objectContaining({ deviceId, verified: true })]);

    const letter = join(dir, 'letter.txt');
    await writeFile(letter, 'Discharge letter, sandbox\n');
    const sent = await connector('send', letter, '--patient', PATIENT, '--wait', '--quiet');
    expect(sent.code, sent.stderr).toBe(0);
    const recordId = sent.stdout.trim();

    // The whole device side through the advertised addresses: FCM_EMULATOR_URL for the push,
    // the enrolment's apiBase for the audit log, the list, the download and the acknowledgement.
    const synced = jsonOutput<{
      push: string;
      records: { recordId: string; outcome: string; file: string }[];
    }>(await bin('cb-device', ['--home', deviceHome, 'sync', '--wait', '30', '--json']));
    expect(synced.push).toBe('records');
    expect(synced.records).toEqual([{ recordId, outcome: 'stored', file: expect.any(String) }]);
    expect(await readFile(synced.records[0]!.file, 'utf8')).toBe('Discharge letter, sandbox\n');
  });
});
