// The front-desk console in a real browser (Debian's Chromium) against the whole local stack:
// ICT adds a front-desk account; that member of staff signs in, looks a patient up by a BSN
// typed with dots, creates an invitation, and the QR code on the screen (read back from a
// screenshot of it) pairs the reference device; the device list shows it; a record sent through
// the connector shows as delivered; the staff member recalls it and revokes the device. The
// hospital's own audit file and journals name that person, and the cloud's audit trail carries
// their pseudonym (operatorRef) on the invitation, the revocation and the recall. Then the
// same in Dutch, and sign-in through a small OpenID provider built here on node:http and jose.
// Screenshots of the main screens go to docs/console/ (volatile values and the QR masked).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Firestore } from '@google-cloud/firestore';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { addStaff, serveConsole, type RunningConsole } from '../../clients/connector/console/index.ts';
import { AUDIT_FILE, type AuditLine } from '../../clients/connector/console/audit.ts';
import { sendFile } from '../../clients/connector/deliver.ts';
import { ConnectorHome } from '../../clients/connector/home.ts';
import { waitForReceipt } from '../../clients/connector/receipts.ts';
import { DeviceHome, pairFromQr, syncRecords } from '../../sdk/index.ts';
import { FileDeviceStore, fileRecordSink } from '../../sdk/node.ts';
import { localPushToken } from '../../clients/device/local-push.ts';
import { loadClientEnvironment, type ClientEnvironment } from '../../clients/lib/environment.ts';
import { readQrPng } from '../../clients/lib/qr.ts';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { storedAuditEvents } from '../helpers/audit-logs.ts';
import { stackBlobStore } from '../helpers/delivery-fixture.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';

const HOSPITAL = 'st-console-zh';
const ADMIN = { id: 'ict-ingrid', password: 'ict admin passphrase' };
const DESK = { id: 'anna.de.vries', password: 'front desk passphrase' };
/** Passes the 11-proof; typed the way it is printed on a card. */
const BSN = '123456782';
const BSN_TYPED = '1234.56.782';
const SHOTS = fileURLToPath(new URL('../../docs/console/', import.meta.url));

async function shoot(page: Page, name: string, mask: string[] = []): Promise<void> {
  // Ids and times change every run and their widths move the table columns: the screenshot
  // shows a fixed stand-in under the mask, so the picture changes only when the page does.
  const saved = await page.evaluate(() =>
    Array.from(document.querySelectorAll('[data-volatile]')).map((element) => {
      const html = element.innerHTML;
      element.textContent = '0000000000000000';
      return html;
    }),
  );
  try {
    await page.screenshot({
      path: join(SHOTS, `${name}.png`),
      fullPage: true,
      animations: 'disabled',
      caret: 'hide',
      mask: ['[data-volatile]', ...mask].map((selector) => page.locator(selector)),
      maskColor: '#c9d2db',
    });
  } finally {
    await page.evaluate((htmls) => {
      Array.from(document.querySelectorAll('[data-volatile]')).forEach((element, index) => {
        element.innerHTML = htmls[index]!;
      });
    }, saved);
  }
}

describe('front-desk console in a browser', { timeout: 180_000 }, () => {
  let onboarded: OnboardedConnector;
  let firestore: Firestore;
  let browser: TestBrowser;
  let running: RunningConsole;
  let environment: ClientEnvironment;
  const logs: string[] = [];

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
    firestore = createFirestore(onboarded.stack.env.GCLOUD_PROJECT!, onboarded.stack.env);
    // As the connector's bin finds the cloud (the storage client reads the emulator's host from
    // the process environment, which this sets).
    environment = loadClientEnvironment(join(onboarded.dir, 'stack.env'));
    await addStaff(onboarded.home, {
      id: ADMIN.id,
      role: 'ict-admin',
      password: ADMIN.password,
      name: 'Ingrid (ICT)',
    });
    running = await serveConsole({
      home: onboarded.home,
      port: 0,
      environment,
      log: (line) => logs.push(line),
    });
    browser = await launchBrowser();
    await mkdir(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await running?.close();
    await firestore?.terminate();
    await onboarded?.close();
  });

  async function signIn(
    page: Page,
    staff: { id: string; password: string },
    screenshot?: string,
    url = running.url,
  ) {
    // Cookies are per host, not per port: start every sign-in from a clean slate.
    await browser.context.clearCookies();
    await page.goto(`${url}/`);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
    await page.fill('#staff', staff.id);
    await page.fill('#password', staff.password);
    if (screenshot) await shoot(page, screenshot, ['#password']);
    await page.click('button[type=submit]');
  }

  const auditLines = async () =>
    (await readFile(join(onboarded.home, AUDIT_FILE), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AuditLine);

  it('walks a member of staff through sign-in, invite, pairing, devices, recall and revoke', async () => {
    const page = await browser.context.newPage();
    // Revoke and recall ask first (a script that runs only under the page's CSP nonce), and the
    // browser reports no blocked script or style.
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    });
    const violations: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
        violations.push(message.text());
      }
    });

    // ICT adds the front-desk account through the console.
    await signIn(page, ADMIN);
    await page.waitForURL(`${running.url}/staff`);
    await page.fill('#new-id', DESK.id);
    await page.fill('#new-name', 'Anna de Vries');
    await page.selectOption('#new-role', 'front-desk');
    await page.fill('#new-password', DESK.password);
    await page.click('form[action="/staff/add"] button[type=submit]');
    await expect.poll(() => page.locator('[role=status]').innerText()).toContain(`Account ${DESK.id} added.`);
    await shoot(page, 'staff');
    // ICT sees no patient.
    expect((await page.goto(`${running.url}/patient`))!.status()).toBe(403);
    await page.goto(`${running.url}/staff`);
    await page.click('text=Sign out');
    await page.waitForURL(/\/login$/);

    // The front desk signs in and looks the patient up; a mistyped BSN is refused first.
    await signIn(page, DESK, 'sign-in');
    await page.waitForURL(`${running.url}/`);
    expect(await page.getByTestId('signed-in').innerText()).toBe(`Signed in as ${DESK.id} (front desk)`);
    await page.fill('#number', '123456789');
    await page.click('form[action="/patient"] button');
    expect(await page.locator('[role=alert]').innerText()).toContain('not a valid patient number');
    await page.fill('#number', BSN_TYPED);
    await shoot(page, 'lookup');
    await page.click('form[action="/patient"] button[type=submit]');
    await page.waitForURL(`${running.url}/patient`);
    expect(await page.getByTestId('patient').innerText()).toBe(`Patient ${BSN}`);
    expect(await page.getByTestId('devices').innerText()).toContain('The patient has no paired device.');

    // The invitation: the QR code on the screen pairs the reference device.
    await page.click('form[action="/patient/invite"] button');
    expect(await page.textContent('h2')).toBe(`Invitation for patient ${BSN}`);
    expect(await page.content()).not.toContain('CB1:'); // the QR's text is drawn, never written out
    const qrPng = join(onboarded.dir, 'screen-qr.png');
    await page.getByTestId('qr').locator('svg').screenshot({ path: qrPng });
    await shoot(page, 'invitation', ['[data-testid=qr]']);
    // Printed, the page is the QR code and its instructions: no navigation, no buttons.
    await page.emulateMedia({ media: 'print' });
    expect(await page.locator('header').isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Print' }).isVisible()).toBe(false);
    expect(await page.getByTestId('qr').isVisible()).toBe(true);
    await page.emulateMedia({ media: 'screen' });
    const qrText = await readQrPng(qrPng);
    expect(qrText.startsWith('CB1:')).toBe(true);
    const deviceHome = new DeviceHome(new FileDeviceStore(join(onboarded.dir, 'device')));
    const paired = await pairFromQr(deviceHome, qrText, {
      platform: 'android',
      fcmToken: localPushToken(),
      now: new Date(),
    });
    expect(paired.hospitalId).toBe(HOSPITAL);
    await page.click('text=Done');
    await page.waitForURL(`${running.url}/patient`);
    const device = page.locator(`[data-device="${paired.deviceId}"]`);
    expect(await device.getByTestId('device-status').innerText()).toBe('active');

    // A record sent through the connector (as this member of staff) shows as delivered.
    const home = new ConnectorHome(onboarded.home);
    const connector = await home.open(DESK.id);
    const operatorRef = connector.operator.operatorRef;
    const letter = join(onboarded.dir, 'discharge-letter.pdf');
    await writeFile(letter, Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(2000)]));
    const blobs = stackBlobStore(onboarded.stack);
    let recordId: string;
    try {
      const { entry } = await sendFile(connector, blobs, {
        file: letter,
        patientNumber: BSN,
        contentClass: 'document',
        title: 'Discharge letter',
        expiresDays: 30,
        now: new Date(),
      });
      recordId = entry.recordId;
      expect((await waitForReceipt(connector, blobs, entry.uploadId, 30_000)).state).toBe('accepted');
    } finally {
      connector.custody.close();
    }
    await page.reload();
    const record = page.locator(`[data-record="${recordId}"]`);
    expect(await record.getByTestId('record-status').innerText()).toBe('delivered to the phone service');
    expect(await record.getByTestId('record-acknowledged').innerText()).toBe('stored on 0 of 1 phone(s)');
    // The phone syncs (download, verify, decrypt, acknowledge): the desk sees it stored.
    const progress: [number, number][] = [];
    const synced = await syncRecords(
      deviceHome,
      await deviceHome.open(),
      fileRecordSink(join(onboarded.dir, 'received')),
      {
        onProgress: (_stage, done, total) => progress.push([done, total]),
      },
    );
    expect(synced.map((result) => result.recordId)).toEqual([recordId]);
    // The download reported its progress up to the container's announced size.
    expect(progress.at(-1)![0]).toBe(progress.at(-1)![1]);
    expect(progress.at(-1)![1]).toBeGreaterThan(2000);
    await page.reload();
    expect(await record.getByTestId('record-acknowledged').innerText()).toBe('stored on 1 of 1 phone(s)');
    expect(await record.innerText()).toContain('Discharge letter');
    expect(await record.innerText()).toContain(DESK.id);
    await shoot(page, 'patient');

    // Recall the record, then revoke the device.
    await record.getByRole('button', { name: 'Recall' }).click();
    await expect
      .poll(() => page.locator('[role=status]').innerText())
      .toContain(`Record ${recordId} is recalled.`);
    expect(await record.getByTestId('record-status').innerText()).toBe('recalled');
    await device.getByRole('button', { name: 'Revoke' }).click();
    await expect
      .poll(() => page.locator('[role=status]').innerText())
      .toContain(`Device ${paired.deviceId} is revoked.`);
    expect(await device.getByTestId('device-status').innerText()).toBe('revoked');
    await expect(device.getByRole('button', { name: 'Revoke' }).count()).resolves.toBe(0);

    expect(dialogs).toEqual([
      'Recall this record? Phones that have not downloaded it will not get it.',
      'Revoke this device? It receives nothing more.',
    ]);
    expect(violations).toEqual([]);

    // The same screen in Dutch.
    await page.click('a[hreflang=nl]');
    await page.waitForURL(`${running.url}/patient`);
    expect(await page.getByTestId('patient').innerText()).toBe(`Patiënt ${BSN}`);
    expect(await device.getByTestId('device-status').innerText()).toBe('ingetrokken');
    expect(await record.getByTestId('record-status').innerText()).toBe('teruggeroepen');
    await shoot(page, 'patient-nl');
    await page.click('a[hreflang=en]');

    // The hospital's audit names the member of staff, with the pseudonym the cloud saw.
    const lines = await auditLines();
    const of = (action: string) => lines.filter((line) => line.action === action && line.outcome === 'OK');
    expect(of('patient.lookup')).toEqual([expect.objectContaining({ staffId: DESK.id, patientNumber: BSN })]);
    expect(of('invitation.created')).toEqual([
      expect.objectContaining({ staffId: DESK.id, operatorRef, patientNumber: BSN }),
    ]);
    expect(of('device.revoked')).toEqual([
      expect.objectContaining({
        staffId: DESK.id,
        operatorRef,
        deviceId: paired.deviceId,
        patientNumber: BSN,
      }),
    ]);
    expect(of('record.recalled')).toEqual([
      expect.objectContaining({ staffId: DESK.id, operatorRef, recordId, patientNumber: BSN }),
    ]);
    expect(of('staff.added')).toEqual([expect.objectContaining({ staffId: ADMIN.id, subject: DESK.id })]);
    // The connector's own journals name them too (the invitation, the send).
    const enrolments = await readFile(join(onboarded.home, 'enrolments.jsonl'), 'utf8');
    expect(enrolments).toContain(`"staffId":"${DESK.id}"`);
    expect((await home.journal()).map((entry) => entry.staffId)).toEqual([DESK.id]);

    // The cloud's audit trail carries only the pseudonym, on each of the three actions.
    for (const action of ['invitation.created', 'device.revoked', 'record.recalled'] as const) {
      const events = await storedAuditEvents(firestore, { hospitalId: HOSPITAL, action });
      expect(
        events.map((event) => event.operatorRef),
        action,
      ).toContain(operatorRef);
      expect(JSON.stringify(events)).not.toContain(DESK.id);
    }

    // What the console logged: JSON lines with no patient number, password or QR text.
    const logged = logs.join('');
    for (const secret of [BSN, DESK.password, ADMIN.password, qrText.slice(4, 40)]) {
      expect(logged).not.toContain(secret);
    }
    await page.close();
  });

  it('refuses actions on another patient’s device or record, whatever the form says', async () => {
    const page = await browser.context.newPage();
    await signIn(page, DESK);
    await page.waitForURL(`${running.url}/`);
    await page.fill('#number', '111222333'); // another valid BSN, with nothing paired or sent
    await page.click('form[action="/patient"] button[type=submit]');
    await page.waitForURL(`${running.url}/patient`);
    const csrf = await page.locator('input[name=csrf]').first().inputValue();
    const lines = await auditLines();
    const revoked = lines.find((line) => line.action === 'device.revoked')!;
    const recalled = lines.find((line) => line.action === 'record.recalled')!;
    const post = (path: string, form: Record<string, string>) =>
      page.request.post(`${running.url}${path}`, { form: { csrf, ...form }, maxRedirects: 0 });
    const wrongDevice = await post('/patient/revoke', { device: revoked.deviceId! });
    expect(wrongDevice.status()).toBe(409);
    expect(await wrongDevice.text()).toContain('DEVICE_NOT_THIS_PATIENTS');
    const wrongRecord = await post('/patient/recall', { record: recalled.recordId! });
    expect(wrongRecord.status()).toBe(409);
    expect(await wrongRecord.text()).toContain('RECORD_NOT_THIS_PATIENTS');
    const garbage = await post('/patient/revoke', { device: '<script>alert(1)</script>' });
    expect(garbage.status()).toBe(409);
    expect(await garbage.text()).not.toContain('<script>alert(1)');
    await page.close();
  });

  describe('sign-in through the hospital identity provider (OIDC)', () => {
    let idp: Server;
    let issuer: string;
    let oidcConsole: RunningConsole;
    /** Who the provider says signs in next. */
    let nextUser = 'a.devries@hospital.example';
    const codes = new Map<string, { challenge: string; nonce: string; redirectUri: string; user: string }>();
    const tokenRequests: URLSearchParams[] = [];

    beforeAll(async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'ES256', use: 'sig' };
      idp = createServer((request, response) => {
        const url = new URL(request.url!, issuer);
        const json = (status: number, body: unknown) =>
          response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        if (url.pathname === '/.well-known/openid-configuration') {
          return json(200, {
            issuer,
            authorization_endpoint: `${issuer}/authorize`,
            token_endpoint: `${issuer}/token`,
            jwks_uri: `${issuer}/jwks`,
          });
        }
        if (url.pathname === '/jwks') return json(200, { keys: [jwk] });
        if (url.pathname === '/authorize') {
          const q = url.searchParams;
          if (q.get('client_id') !== 'cb-console' || q.get('code_challenge_method') !== 'S256') {
            return json(400, { error: 'invalid_request' });
          }
          // The member of staff is already signed in at the provider: straight back with a code.
          const code = randomBytes(16).toString('base64url');
          codes.set(code, {
            challenge: q.get('code_challenge')!,
            nonce: q.get('nonce')!,
            redirectUri: q.get('redirect_uri')!,
            user: nextUser,
          });
          const back = new URL(q.get('redirect_uri')!);
          back.searchParams.set('code', code);
          back.searchParams.set('state', q.get('state')!);
          return response.writeHead(302, { location: back.toString() }).end();
        }
        if (url.pathname === '/token' && request.method === 'POST') {
          let body = '';
          request.on('data', (chunk: Buffer) => (body += chunk.toString()));
          request.on('end', async () => {
            const form = new URLSearchParams(body);
            tokenRequests.push(form);
            const issued = codes.get(form.get('code') ?? '');
            codes.delete(form.get('code') ?? '');
            const verifier = form.get('code_verifier') ?? '';
            const auth = request.headers.authorization ?? '';
            if (
              !issued ||
              issued.redirectUri !== form.get('redirect_uri') ||
              createHash('sha256').update(verifier).digest('base64url') !== issued.challenge ||
              auth !== `Basic ${Buffer.from('cb-console:console-secret').toString('base64')}`
            ) {
              return json(400, { error: 'invalid_grant' });
            }
            const idToken = await new SignJWT({ nonce: issued.nonce, preferred_username: issued.user })
              .setProtectedHeader({ alg: 'ES256', kid: 'test-key' })
              .setIssuer(issuer)
              .setAudience('cb-console')
              .setSubject(`sub-${issued.user}`)
              .setIssuedAt()
              .setExpirationTime('5m')
              .sign(privateKey);
            json(200, { id_token: idToken, access_token: 'unused', token_type: 'Bearer' });
          });
          return;
        }
        json(404, { error: 'not_found' });
      });
      await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
      issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
      await addStaff(onboarded.home, { id: 'anna.oidc', role: 'front-desk', oidcSubject: nextUser });
      oidcConsole = await serveConsole({
        home: onboarded.home,
        port: 0,
        environment,
        log: () => undefined,
        oidc: { issuer, clientId: 'cb-console', clientSecret: 'console-secret' },
      });
    });

    afterAll(async () => {
      await oidcConsole?.close();
      await new Promise((resolve) => idp?.close(resolve));
    });

    it('signs in a member of staff the provider vouches for, with PKCE, and no one without an account', async () => {
      await browser.context.clearCookies();
      const page = await browser.context.newPage();
      await page.goto(`${oidcConsole.url}/login`);
      await page.getByTestId('oidc').click();
      await page.waitForURL(`${oidcConsole.url}/`);
      expect(await page.getByTestId('signed-in').innerText()).toBe('Signed in as anna.oidc (front desk)');
      // The code went back with the verifier whose hash the provider was shown.
      expect(tokenRequests.at(-1)!.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const signins = (await auditLines()).filter((line) => line.action === 'signin' && line.via === 'oidc');
      expect(signins).toEqual([expect.objectContaining({ staffId: 'anna.oidc', outcome: 'OK' })]);
      await page.close();

      // Someone the provider knows but the console does not.
      nextUser = 'visitor@hospital.example';
      await browser.context.clearCookies();
      const stranger = await browser.context.newPage();
      await stranger.goto(`${oidcConsole.url}/login`);
      await stranger.getByTestId('oidc').click();
      await stranger.waitForURL(/\/login\?oidc=OIDC_NO_ACCOUNT$/);
      expect(await stranger.locator('[role=alert]').innerText()).toContain('OIDC_NO_ACCOUNT');
      // A callback replayed or forged (no matching state cookie) signs no one in.
      const forged = await stranger.request.get(`${oidcConsole.url}/login/oidc/callback?code=x&state=y`, {
        maxRedirects: 0,
      });
      expect(forged.headers().location).toBe('/login?oidc=OIDC_STATE_INVALID');
      await stranger.close();
    });
  });
});
