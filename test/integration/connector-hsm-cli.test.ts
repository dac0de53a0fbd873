// C3 end to end: a connector whose hospital keys live in a PKCS#11 token (SoftHSM2, which
// .ci/run installs) is set up with `cb-connector keys --custody pkcs11`, invites a patient, and
// sends a record the reference device decrypts: every signature and every HMAC came from the
// token, and the connector's home holds no key material at all.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';
import { softHsmCustody, SOFTHSM_MODULE as MODULE } from '../helpers/softhsm.ts';

const HOSPITAL = 'st-hsm-zh';
const PATIENT = 'hsm-patient-1';
const TOKEN = 'cb-connector-e2e';

describe('C3 a connector with its keys in a PKCS#11 token', { timeout: 120_000 }, () => {
  const pin = randomBytes(6).toString('hex');
  const custody = softHsmCustody(TOKEN, pin);
  let onboarded: OnboardedConnector;
  let keysFile: string;

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL, ...custody.options });
    keysFile = join(onboarded.home, 'hospital-keys.json');
  });

  afterAll(() => onboarded?.close());

  it('C3 creates the keys in the token, invites, sends, and the phone decrypts; no key is on disk', async () => {
    const { dir, bin, connector } = onboarded;
    const stored = await readFile(keysFile, 'utf8');
    expect(JSON.parse(stored)).toMatchObject({
      custody: 'pkcs11',
      module: MODULE,
      tokenLabel: TOKEN,
      publicKey: onboarded.publicKey,
    });
    expect(stored).not.toMatch(/privateKey|masterSecret/);
    expect(stored).not.toContain(pin);

    const qr = join(dir, 'invite.png');
    expect((await connector('invite', PATIENT, '--out', qr)).code).toBe(0);
    expect((await bin('cb-device', ['pair', qr, '--home', join(dir, 'device')])).code).toBe(0);
    const letter = join(dir, 'letter.txt');
    await writeFile(letter, 'signed and keyed in the token');
    const sent = await connector('send', letter, '--patient', PATIENT, '--wait');
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(/accepted/);
    const synced = await bin('cb-device', [
      'sync',
      '--wait',
      '20',
      '--out',
      join(dir, 'received'),
      '--home',
      join(dir, 'device'),
    ]);
    expect(synced.code, synced.stderr).toBe(0);
    expect(await readFile(join(dir, 'received', 'letter.txt'), 'utf8')).toBe('signed and keyed in the token');

    // Without the PIN the connector does not start, and says why without printing a secret.
    const asConnector = ['devices', '--patient', PATIENT, '--home', onboarded.home];
    const noPin = await bin('cb-connector', asConnector, { SOFTHSM2_CONF: custody.tokenEnv().SOFTHSM2_CONF });
    expect(noPin.code).toBe(2);
    expect(noPin.stderr).toContain('CB_HSM_PIN');
    const wrongPin = await bin('cb-connector', asConnector, { ...custody.tokenEnv(), CB_HSM_PIN: `${pin}0` });
    expect(wrongPin.code).toBe(3);
    expect(wrongPin.stderr).toContain('HSM_LOGIN_FAILED');
    expect(wrongPin.stderr).not.toContain(pin);
  });
});
