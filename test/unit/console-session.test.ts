// The console's sessions and forms, over real HTTP to a console on a connector home (no cloud
// needed for sign-in): cookies are HttpOnly and SameSite=Strict, a form without the session's
// CSRF token or from another origin is refused, a session survives only its idle time, wrong
// passwords are rate limited, the pages carry a nonce CSP and no-store, the Host header is
// checked, /healthz answers without a session, and a non-loopback bind without TLS is refused.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addStaff,
  removeStaff,
  serveConsole,
  setPassword,
  type RunningConsole,
} from '../../clients/connector/console/index.ts';
import { AttemptLimiter, SessionStore, sameToken } from '../../clients/connector/console/session.ts';

const PASSWORD = 'front desk passphrase';
const run = promisify(execFile);

describe('session store and limiter', () => {
  it('expires a session after its idle time and at its maximum age, and never by a look-alike id', () => {
    let now = 0;
    const store = new SessionStore(() => now);
    const { id } = store.create('anna', 'front-desk', 'stamp');
    now = 14 * 60_000;
    expect(store.get(id)?.staffId).toBe('anna');
    now += 14 * 60_000; // still within 15 minutes of the last use
    expect(store.get(id)?.staffId).toBe('anna');
    expect(store.get(`${id}x`)).toBeUndefined();
    now += 16 * 60_000;
    expect(store.get(id)).toBeUndefined();
    const second = store.create('anna', 'front-desk', 'stamp');
    for (let i = 0; i < 40; i++) {
      now += 14 * 60_000;
      store.get(second.id);
    }
    expect(store.get(second.id)).toBeUndefined(); // over 8 hours, however busy
  });

  it('limits failures in a sliding window and forgets them on success', () => {
    let now = 0;
    const limiter = new AttemptLimiter(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) limiter.fail('anna');
    expect(limiter.blocked('anna')).toBe(true);
    expect(limiter.blocked('bob')).toBe(false);
    now = 61_000;
    expect(limiter.blocked('anna')).toBe(false);
    limiter.fail('bob');
    limiter.succeed('bob');
    expect(limiter.blocked('bob')).toBe(false);
  });

  it('compares tokens in constant time, unequal lengths unequal', () => {
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abc', 'abd')).toBe(false);
    expect(sameToken('abc', 'abcd')).toBe(false);
    expect(sameToken(undefined, 'abc')).toBe(false);
  });
});

describe('console over HTTP', () => {
  let home: string;
  let running: RunningConsole;
  const logs: string[] = [];

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'cb-console-http-'));
    await addStaff(home, { id: 'anna', role: 'front-desk', password: PASSWORD });
    await addStaff(home, { id: 'ingrid', role: 'ict-admin', password: PASSWORD });
    running = await serveConsole({
      home,
      port: 0,
      environment: { env: {}, source: undefined },
      log: (line) => logs.push(line),
      loginLimits: { perAccount: 3, perClient: 100, windowMs: 60_000 },
    });
  });
  afterAll(async () => {
    await running?.close();
    await rm(home, { recursive: true, force: true });
  });

  const get = (path: string, cookie = '', headers: Record<string, string> = {}) =>
    fetch(`${running.url}${path}`, { redirect: 'manual', headers: { cookie, ...headers } });
  const post = (
    path: string,
    form: Record<string, string>,
    cookie = '',
    headers: Record<string, string> = {},
  ) =>
    fetch(`${running.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form),
    });
  const cookiesOf = (response: Response) => response.headers.getSetCookie();
  const value = (setCookie: string[], name: string) =>
    setCookie
      .find((line) => line.startsWith(`${name}=`))
      ?.split(';')[0]!
      .slice(name.length + 1);

  async function signIn(staff: string, password = PASSWORD) {
    const page = await get('/login');
    const loginToken = value(cookiesOf(page), 'cb_login')!;
    const html = await page.text();
    expect(html).toContain(`name="login" value="${loginToken}"`);
    const answer = await post('/login', { login: loginToken, staff, password }, `cb_login=${loginToken}`);
    const session = value(cookiesOf(answer), 'cb_session');
    return { answer, session, cookie: session ? `cb_session=${session}` : '' };
  }

  async function csrfOf(cookie: string, path = '/') {
    const html = await (await get(path, cookie)).text();
    return /name="csrf" value="([^"]+)"/.exec(html)![1]!;
  }

  it('answers /healthz without a session, and says what is missing', async () => {
    const health = await get('/healthz');
    expect(health.status).toBe(503); // the home has staff but no connector configuration
    expect(await health.json()).toEqual({
      status: 'unavailable',
      checks: { configuration: 'missing', staff: 'ok' },
    });
  });

  it('signs in with HttpOnly SameSite=Strict cookies, a nonce CSP and no caching', async () => {
    expect((await get('/')).headers.get('location')).toBe('/login');
    const { answer, session } = await signIn('anna');
    expect(answer.status).toBe(303);
    expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const line = cookiesOf(answer).find((cookie) => cookie.startsWith('cb_session='))!;
    expect(line).toContain('HttpOnly');
    expect(line).toContain('SameSite=Strict');
    const page = await get('/', `cb_session=${session}`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toMatch(/script-src 'nonce-[^']+'/);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('cache-control')).toBe('no-store');
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    expect(await page.text()).toContain(`<script nonce="${nonce}">`);
  });

  it('refuses a form without the session CSRF token, or from another origin', async () => {
    const { cookie } = await signIn('anna');
    const csrf = await csrfOf(cookie);
    const noToken = await post('/patient', { number: '123456782' }, cookie);
    expect(noToken.status).toBe(403);
    const wrongToken = await post('/patient', { number: '123456782', csrf: `${csrf}x` }, cookie);
    expect(wrongToken.status).toBe(403);
    const otherSession = await signIn('anna');
    const foreign = await post(
      '/patient',
      { number: '123456782', csrf: await csrfOf(otherSession.cookie) },
      cookie,
    );
    expect(foreign.status).toBe(403);
    const crossOrigin = await post('/patient', { number: '123456782', csrf }, cookie, {
      origin: 'http://evil.example',
    });
    expect(crossOrigin.status).toBe(403);
    const crossSite = await post('/patient', { number: '123456782', csrf }, cookie, {
      'sec-fetch-site': 'cross-site',
    });
    expect(crossSite.status).toBe(403);
    // With the token, from the console's own origin, the lookup goes through (and stays out of the URL).
    const ok = await post('/patient', { number: '1234.56.782', csrf }, cookie, { origin: running.url });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/patient');
    // An invalid number is refused on the page, with no lookup.
    const invalid = await post('/patient', { number: '123456789', csrf }, cookie);
    expect(invalid.status).toBe(400);
    expect(await invalid.text()).toContain('not a valid patient number');
  });

  it('refuses sign-in without the pre-session token, and rate limits wrong passwords', async () => {
    expect((await post('/login', { staff: 'anna', password: PASSWORD })).status).toBe(403);
    for (let i = 0; i < 3; i++) expect((await signIn('anna', 'wrong password!')).answer.status).toBe(401);
    const limited = await signIn('anna');
    expect(limited.answer.status).toBe(429);
    expect(limited.session).toBeUndefined();
    // Another account is not locked by anna's failures.
    expect((await signIn('ingrid')).answer.status).toBe(303);
  });

  it('keeps roles apart: the front desk cannot manage staff, ICT sees no patient', async () => {
    const admin = await signIn('ingrid');
    expect((await get('/patient', admin.cookie)).status).toBe(403);
    expect((await get('/staff', admin.cookie)).status).toBe(200);
    const desk = await signIn('ingrid'); // a second admin session for the form token
    const csrf = await csrfOf(desk.cookie, '/staff');
    expect(
      (await post('/staff/add', { csrf, staff: 'bert', role: 'front-desk', password: PASSWORD }, desk.cookie))
        .status,
    ).toBe(303);
    expect(await (await get('/staff', desk.cookie)).text()).toContain('bert');
  });

  it('ends the sessions of an account whose password changed or that was removed (even by another process)', async () => {
    await addStaff(home, { id: 'temp.desk', role: 'front-desk', password: PASSWORD });
    const { cookie } = await signIn('temp.desk');
    expect((await get('/', cookie)).status).toBe(200);
    await setPassword(home, 'temp.desk', `${PASSWORD} renewed`); // as `cb-connector staff password` would
    expect((await get('/', cookie)).headers.get('location')).toBe('/login?expired');
    const again = await signIn('temp.desk', `${PASSWORD} renewed`);
    expect((await get('/', again.cookie)).status).toBe(200);
    await removeStaff(home, 'temp.desk'); // as `cb-connector staff remove` would, from outside
    expect((await get('/', again.cookie)).headers.get('location')).toBe('/login?expired');
  });

  it('switches language back to the same page, never to another host', async () => {
    const switched = await get('/login?lang=nl');
    expect(switched.status).toBe(303);
    expect(switched.headers.get('location')).toBe('/login');
    expect(cookiesOf(switched).join()).toContain('cb_lang=nl');
    expect(await (await get('/login', 'cb_lang=nl')).text()).toContain('Medewerkersaccount');
    // Sent as is (fetch would normalise the path first): the dot segment makes the path `//evil.example/`.
    const { port } = new URL(running.url);
    const location = await new Promise<string | undefined>((resolve, reject) =>
      request({ host: '127.0.0.1', port, path: '/a/..//evil.example/?lang=nl' }, (answer) => {
        answer.resume();
        resolve(answer.headers.location);
      })
        .on('error', reject)
        .end(),
    );
    expect(location).toBe('/');
  });

  it('signs out for good, and refuses a foreign Host header (DNS rebinding)', async () => {
    const { cookie } = await signIn('ingrid');
    const csrf = await csrfOf(cookie, '/staff');
    expect((await post('/logout', { csrf }, cookie)).status).toBe(303);
    expect((await get('/staff', cookie)).headers.get('location')).toMatch(/^\/login/);
    // fetch() sets Host itself; node:http sends the one a rebinding page's browser would.
    const status = await new Promise<number>((resolve, reject) =>
      request(`${running.url}/healthz`, { headers: { host: 'attacker.example' } }, (answer) => {
        answer.resume();
        resolve(answer.statusCode!);
      })
        .on('error', reject)
        .end(),
    );
    expect(status).toBe(421);
  });

  it('logs JSON lines without query strings, cookies, passwords or patient numbers', () => {
    expect(logs.length).toBeGreaterThan(10);
    for (const line of logs) expect(() => JSON.parse(line)).not.toThrow();
    const all = logs.join('');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain('123456782');
    expect(all).not.toContain('cb_session');
    expect(JSON.parse(logs.find((line) => line.includes('"route":"/login"'))!)).toMatchObject({
      level: 'info',
      method: expect.any(String),
      status: expect.any(Number),
    });
  });

  it('serves HTTPS with Secure __Host- cookies and HSTS, also beyond loopback', async () => {
    const cert = join(home, 'cert.pem');
    const key = join(home, 'key.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    const tls = { cert: await readFile(cert), key: await readFile(key) };
    const secure = await serveConsole({
      home,
      host: '0.0.0.0',
      port: 0,
      tls,
      environment: { env: {}, source: undefined },
      log: () => undefined,
    });
    try {
      expect(secure.url).toMatch(/^https:\/\/0\.0\.0\.0:\d+$/);
      const port = new URL(secure.url).port;
      const answer = await new Promise<IncomingMessage>((resolve, reject) =>
        httpsRequest(`https://127.0.0.1:${port}/login`, { ca: tls.cert }, (response) => {
          response.resume();
          resolve(response);
        })
          .on('error', reject)
          .end(),
      );
      expect(answer.statusCode).toBe(200);
      expect(answer.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      const login = answer.headers['set-cookie']!.find((line) => line.startsWith('__Host-cb_login='))!;
      expect(login).toContain('; Secure');
      expect(login).toContain('Path=/');
    } finally {
      await secure.close();
    }
  });

  it('refuses to bind beyond this machine without TLS, with a stable code', async () => {
    await expect(
      serveConsole({ home, host: '0.0.0.0', port: 0, environment: { env: {}, source: undefined } }),
    ).rejects.toMatchObject({ code: 'CONSOLE_TLS_REQUIRED' });
    await expect(
      serveConsole({
        home,
        host: '0.0.0.0',
        port: 0,
        tls: { cert: 'nope', key: 'nope' },
        environment: { env: {}, source: undefined },
      }),
    ).rejects.toMatchObject({ code: 'CONSOLE_TLS_INVALID' });
  });
});
