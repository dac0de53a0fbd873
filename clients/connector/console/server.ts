// The front-desk console's HTTP server (node:http, or node:https when given a certificate).
// Bound to this machine only unless ICT gives it TLS: a console on the hospital network without
// TLS would send passwords, session cookies and QR codes (each a pairing secret) in the clear,
// so that combination is refused with CONSOLE_TLS_REQUIRED. What it defends, and how:
// - sessions: random ids in HttpOnly, SameSite=Strict cookies (Secure and __Host- under TLS);
//   15 minutes idle, 8 hours at most; a fresh id at every sign-in;
// - forms: a per-session CSRF token compared in constant time, and Origin / Sec-Fetch-Site
//   checked when the browser sends them; sign-in has its own pre-session token;
// - sign-in: scrypt hashes, a decoy hash for unknown accounts, failures limited per account and
//   per client address;
// - the pages: a nonce-based CSP without 'unsafe-inline', no framing, no referrer beyond the console, no caching
//   (every page shows patient data or a QR secret), and a Host check against DNS rebinding;
// - roles: the front desk works with patients, ICT administrators manage staff accounts and
//   see no patient;
// - logs: JSON lines with route, status and timing only; the who-did-what lives in the
//   hospital's audit file (audit.ts), and the patient number never enters a URL.
import { randomBytes, randomUUID } from 'node:crypto';
import { access } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { isProtocolError } from '../../../shared/core/protocol/index.ts';
import { ApiError } from '../../lib/api-client.ts';
import { loadClientEnvironment, type ClientEnvironment } from '../../lib/environment.ts';
import { UsageError } from '../../lib/cli.ts';
import { ConnectorHome } from '../home.ts';
import { ConsoleAudit, type AuditLine } from './audit.ts';
import { DEFAULT_CONSOLE_PORT } from './defaults.ts';
import { ConsoleError } from './errors.ts';
import { isLanguage, languageFrom, translate, type Language, type MessageKey } from './i18n.ts';
import { jsonLogger, type LogSink } from './log.ts';
import { OidcClient, OidcSignInError, type OidcOptions } from './oidc.ts';
import {
  continuePage,
  invitationPage,
  loginPage,
  lookupPage,
  messagePage,
  patientPage,
  staffPage,
  type PageContext,
} from './pages.ts';
import { bsnScheme, normalisePatientNumber, type PatientNumberScheme } from './patient-number.ts';
import { ConsoleService, type InviteSettings } from './service.ts';
import { AttemptLimiter, cookie, parseCookies, randomToken, sameToken, SessionStore } from './session.ts';
import { StaffStore, type StaffMember } from './staff.ts';

export interface ConsoleOptions {
  /** The connector's home directory (keys, configuration, journals, the staff store). */
  readonly home: string;
  /** Default 127.0.0.1. Anything not loopback needs `tls`. */
  readonly host?: string;
  /** Default 8480; 0 picks a free port. */
  readonly port?: number;
  /** PEM certificate chain and key. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly oidc?: OidcOptions;
  /** Where the cloud is (default: as the connector's bin finds it). */
  readonly environment?: ClientEnvironment;
  /** Accepted patient-number schemes, tried in order (default: the Dutch BSN). */
  readonly patientNumbers?: readonly PatientNumberScheme[];
  readonly invite?: Partial<InviteSettings>;
  /** Where JSON log lines go (default stderr). */
  readonly log?: LogSink;
  /** Failed sign-ins allowed per account and per client address in `windowMs` (defaults 5, 20, 15 min). */
  readonly loginLimits?: {
    readonly perAccount: number;
    readonly perClient: number;
    readonly windowMs: number;
  };
}

export interface RunningConsole {
  readonly url: string;
  close(): Promise<void>;
}

export { DEFAULT_CONSOLE_PORT };
const MAX_FORM_BYTES = 16 * 1024;
/** The pages a language switch may return to. */
const PAGES = new Set(['/', '/login', '/patient', '/staff']);

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}

/** Thrown inside a handler to answer with a status and a message page. */
class HttpRefusal extends Error {
  readonly status: number;
  readonly key: MessageKey;
  readonly params: Record<string, string>;
  constructor(status: number, key: MessageKey, params: Record<string, string> = {}) {
    super(key);
    this.status = status;
    this.key = key;
    this.params = params;
  }
}

export async function serveConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host) && !options.tls) {
    throw new ConsoleError(
      'CONSOLE_TLS_REQUIRED',
      `the console binds ${host} only with TLS (give a certificate and key), or bind 127.0.0.1`,
    );
  }
  if (options.tls) {
    try {
      createSecureContext({ cert: options.tls.cert, key: options.tls.key });
    } catch {
      throw new ConsoleError('CONSOLE_TLS_INVALID', 'the TLS certificate or key cannot be used');
    }
  }
  const secure = options.tls !== undefined;
  const home = new ConnectorHome(options.home);
  const staff = new StaffStore(home.dir);
  const audit = new ConsoleAudit(home.dir);
  const logger = jsonLogger(options.log);
  const service = new ConsoleService(home, options.environment ?? loadClientEnvironment(), {
    expiresMinutes: options.invite?.expiresMinutes ?? 60,
    attempts: options.invite?.attempts ?? 3,
  });
  const oidc = options.oidc ? new OidcClient(options.oidc) : undefined;
  const schemes = options.patientNumbers ?? [bsnScheme];
  const sessions = new SessionStore();
  const limits = options.loginLimits ?? { perAccount: 5, perClient: 20, windowMs: 15 * 60_000 };
  const accountLimiter = new AttemptLimiter(limits.perAccount, limits.windowMs);
  const clientLimiter = new AttemptLimiter(limits.perClient, limits.windowMs);
  const sessionCookie = secure ? '__Host-cb_session' : 'cb_session';
  const loginCookie = secure ? '__Host-cb_login' : 'cb_login';
  const oidcCookie = secure ? '__Host-cb_oidc' : 'cb_oidc';
  let allowedHosts: Set<string> | undefined;

  const handler = (request: IncomingMessage, response: ServerResponse) => {
    const started = performance.now();
    const requestId = randomUUID();
    const route = routeName(request.url);
    response.on('finish', () =>
      logger.info('request', {
        requestId,
        method: request.method,
        route,
        status: response.statusCode,
        ms: Math.round(performance.now() - started),
      }),
    );
    handle(request, response, requestId).catch((error: unknown) => {
      logger.error('unhandled', { requestId, error: (error as Error | null)?.name ?? 'unknown' });
      if (!response.headersSent) {
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      }
      response.end();
    });
  };

  async function handle(request: IncomingMessage, response: ServerResponse, requestId: string) {
    const nonce = randomBytes(16).toString('base64');
    setSecurityHeaders(response, nonce, secure);
    // DNS rebinding: a page on another name resolving to 127.0.0.1 must not reach the console.
    if (allowedHosts && !allowedHosts.has((request.headers.host ?? '').toLowerCase())) {
      response.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' }).end('misdirected request\n');
      return;
    }
    const url = new URL(request.url ?? '/', 'http://console.invalid');
    const method = request.method ?? 'GET';
    const cookies = parseCookies(request.headers.cookie);
    const sessionId = cookies.get(sessionCookie);
    let session = sessions.get(sessionId);
    if (session) {
      // The store is the authority on every request: an account removed, given another role or
      // a new password (here, or with `cb-connector staff` beside the running console) loses
      // its session.
      const member = await staff.get(session.staffId).catch(() => undefined);
      if (member?.stamp !== session.stamp) {
        sessions.destroy(sessionId);
        session = undefined;
      }
    }
    const chosen = url.searchParams.get('lang');
    if (method === 'GET' && isLanguage(chosen)) {
      if (session) session.lang = chosen;
      response.setHeader('set-cookie', cookie('cb_lang', chosen, { secure, maxAgeSeconds: 365 * 86400 }));
      // Back to the same page, but only to a page of the console's own: a path like
      // `/a/..//evil.example` normalises to `//evil.example`, which a browser reads as another host.
      redirect(response, PAGES.has(url.pathname) ? url.pathname : '/');
      return;
    }
    const lang: Language =
      session?.lang ??
      (isLanguage(cookies.get('cb_lang'))
        ? (cookies.get('cb_lang') as Language)
        : languageFrom(request.headers['accept-language']));
    const context = (extra: Partial<PageContext> = {}): PageContext => ({
      lang,
      nonce,
      path: url.pathname,
      ...(session ? { staff: { id: session.staffId, role: session.role }, csrf: session.csrf } : {}),
      ...extra,
    });
    const t = (key: MessageKey, params?: Record<string, string>) => translate(lang, key, params);
    const client = request.socket.remoteAddress ?? 'unknown';

    try {
      if (url.pathname === '/healthz' && method === 'GET') {
        const configured = await access(home.configPath).then(
          () => true,
          () => false,
        );
        const accounts = await staff.list().then(
          (list) => list.length,
          () => -1,
        );
        const healthy = configured && accounts > 0;
        sendJson(response, healthy ? 200 : 503, {
          status: healthy ? 'ok' : 'unavailable',
          checks: {
            configuration: configured ? 'ok' : 'missing',
            staff: accounts > 0 ? 'ok' : accounts === 0 ? 'none' : 'unreadable',
          },
        });
        return;
      }
      if (url.pathname === '/favicon.ico') {
        response.writeHead(404).end();
        return;
      }
      if (url.pathname === '/login' && method === 'GET') {
        if (session) return redirect(response, '/');
        // The browser's token is kept while it lives: a second tab (or the favicon's redirect
        // here) must not invalidate the form already on screen.
        const held = cookies.get(loginCookie);
        const loginToken = held && /^[A-Za-z0-9_-]{43}$/.test(held) ? held : randomToken();
        response.setHeader('set-cookie', cookie(loginCookie, loginToken, { secure, maxAgeSeconds: 1800 }));
        const failure = url.searchParams.get('oidc');
        const error = url.searchParams.has('expired')
          ? t('login.expired')
          : failure && /^OIDC_[A-Z_]{1,40}$/.test(failure)
            ? t('login.oidcFailed', { code: failure })
            : undefined;
        sendHtml(
          response,
          200,
          loginPage(context(error ? { error } : {}), { loginToken, oidc: oidc !== undefined }),
        );
        return;
      }
      if (url.pathname === '/login' && method === 'POST') {
        checkOrigin(request);
        const form = await readForm(request);
        if (!sameToken(form.get('login') ?? undefined, cookies.get(loginCookie))) {
          throw new HttpRefusal(403, 'error.csrf');
        }
        const staffId = (form.get('staff') ?? '').trim().toLowerCase().slice(0, 64);
        const password = form.get('password') ?? '';
        const relogin = (error: string, status: number) => {
          const loginToken = randomToken();
          response.setHeader('set-cookie', cookie(loginCookie, loginToken, { secure, maxAgeSeconds: 1800 }));
          sendHtml(response, status, loginPage(context({ error }), { loginToken, oidc: oidc !== undefined }));
        };
        if (accountLimiter.blocked(staffId) || clientLimiter.blocked(client)) {
          logger.warn('signin rate limited', { requestId });
          await audit.write({
            action: 'signin.refused',
            via: 'password',
            outcome: 'LOGIN_RATE_LIMITED',
            client,
          });
          return relogin(t('login.rateLimited'), 429);
        }
        const member = await staff.verify(staffId, password);
        if (!member) {
          accountLimiter.fail(staffId);
          clientLimiter.fail(client);
          // The account is named only if it exists: a typed password in the name field stays out.
          const known = (await staff.get(staffId)) !== undefined;
          await audit.write({
            action: 'signin.refused',
            via: 'password',
            outcome: 'LOGIN_FAILED',
            ...(known ? { staffId } : {}),
            client,
          });
          return relogin(t('login.failed'), 401);
        }
        accountLimiter.succeed(staffId);
        return signIn(response, member, 'password', client, () => redirect(response, '/'));
      }
      if (url.pathname === '/login/oidc' && method === 'GET' && oidc) {
        let started: { url: string; state: string };
        try {
          started = await oidc.start();
        } catch (error) {
          if (!(error instanceof OidcSignInError)) throw error;
          logger.warn('oidc provider unavailable', { requestId, code: error.code });
          return redirect(response, `/login?oidc=${error.code}`);
        }
        const { url: target, state } = started;
        // Lax, not Strict: the provider's redirect back is a cross-site navigation.
        response.setHeader(
          'set-cookie',
          cookie(oidcCookie, state, { secure, maxAgeSeconds: 600 }).replace(
            'SameSite=Strict',
            'SameSite=Lax',
          ),
        );
        redirect(response, target);
        return;
      }
      if (url.pathname === '/login/oidc/callback' && method === 'GET' && oidc) {
        response.setHeader(
          'set-cookie',
          cookie(oidcCookie, '', { secure, maxAgeSeconds: 0 }).replace('SameSite=Strict', 'SameSite=Lax'),
        );
        let member: StaffMember | undefined;
        let code = 'OIDC_NO_ACCOUNT';
        try {
          const subject = await oidc.finish(url.searchParams, cookies.get(oidcCookie));
          member = await staff.byOidcSubject(subject);
          if (!member)
            await audit.write({ action: 'signin.refused', via: 'oidc', outcome: code, subject, client });
        } catch (error) {
          if (!(error instanceof OidcSignInError)) throw error;
          code = error.code;
          await audit.write({ action: 'signin.refused', via: 'oidc', outcome: code, client });
        }
        if (!member) return redirect(response, `/login?oidc=${code}`);
        return signIn(response, member, 'oidc', client, () =>
          sendHtml(response, 200, continuePage(context())),
        );
      }

      // Everything below needs a signed-in member of staff.
      if (!session || !sessionId) {
        if (method === 'GET') return redirect(response, sessionId ? '/login?expired' : '/login');
        throw new HttpRefusal(403, 'login.expired');
      }
      let form = new URLSearchParams();
      if (method === 'POST') {
        checkOrigin(request);
        form = await readForm(request);
        if (!sameToken(form.get('csrf') ?? undefined, session.csrf)) throw new HttpRefusal(403, 'error.csrf');
      }
      const flash = session.flash;
      delete session.flash;
      const who = { staffId: session.staffId, via: 'session' as const };

      if (url.pathname === '/logout' && method === 'POST') {
        sessions.destroy(sessionId);
        await audit.write({ action: 'signout', outcome: 'OK', ...who });
        response.setHeader('set-cookie', cookie(sessionCookie, '', { secure, maxAgeSeconds: 0 }));
        return redirect(response, '/login');
      }
      if (url.pathname === '/' && method === 'GET') {
        if (session.role === 'ict-admin') return redirect(response, '/staff');
        return sendHtml(response, 200, lookupPage(context(flash ? { flash } : {})));
      }
      if (url.pathname.startsWith('/patient')) {
        if (session.role !== 'front-desk') throw new HttpRefusal(403, 'error.forbidden');
        if (url.pathname === '/patient' && method === 'POST') {
          const found = normalisePatientNumber(form.get('number') ?? '', schemes);
          if (!found) {
            return sendHtml(response, 400, lookupPage(context({ error: t('lookup.invalid') })));
          }
          session.patientNumber = found.value;
          await audit.write({ action: 'patient.lookup', outcome: 'OK', patientNumber: found.value, ...who });
          return redirect(response, '/patient');
        }
        const patientNumber = session.patientNumber;
        if (!patientNumber) return redirect(response, '/');
        if (url.pathname === '/patient' && method === 'GET') {
          const data = await service.patient(session.staffId, patientNumber);
          return sendHtml(response, 200, patientPage(context(flash ? { flash } : {}), patientNumber, data));
        }
        const act = async (
          line: Omit<AuditLine, 'at' | 'outcome' | 'via' | 'staffId' | 'patientNumber'>,
          action: () => Promise<{ operatorRef: string }>,
        ) => {
          try {
            const { operatorRef } = await action();
            await audit.write({ ...line, outcome: 'OK', operatorRef, patientNumber, ...who });
          } catch (error) {
            await audit.write({ ...line, outcome: errorCode(error) ?? 'FAILED', patientNumber, ...who });
            throw error;
          }
        };
        if (url.pathname === '/patient/invite' && method === 'POST') {
          let shown: Awaited<ReturnType<ConsoleService['invite']>>;
          try {
            shown = await service.invite(session.staffId, patientNumber);
          } catch (error) {
            await audit.write({
              action: 'invitation.created',
              outcome: errorCode(error) ?? 'FAILED',
              patientNumber,
              ...who,
            });
            throw error;
          }
          await audit.write({
            action: 'invitation.created',
            outcome: 'OK',
            invitationId: shown.invitationId,
            operatorRef: shown.operatorRef,
            patientNumber,
            ...who,
          });
          return sendHtml(response, 200, invitationPage(context(), patientNumber, shown));
        }
        if (url.pathname === '/patient/revoke' && method === 'POST') {
          const deviceId = form.get('device') ?? '';
          await act({ action: 'device.revoked', deviceId: deviceId.slice(0, 64) }, () =>
            service.revoke(session.staffId, patientNumber, deviceId),
          );
          session.flash = t('devices.revoked', { device: deviceId });
          return redirect(response, '/patient');
        }
        if (url.pathname === '/patient/recall' && method === 'POST') {
          const recordId = form.get('record') ?? '';
          await act({ action: 'record.recalled', recordId: recordId.slice(0, 64) }, () =>
            service.recall(session.staffId, patientNumber, recordId),
          );
          session.flash = t('records.recalled', { record: recordId });
          return redirect(response, '/patient');
        }
      }
      if (url.pathname.startsWith('/staff')) {
        if (session.role !== 'ict-admin') throw new HttpRefusal(403, 'error.forbidden');
        if (url.pathname === '/staff' && method === 'GET') {
          return sendHtml(
            response,
            200,
            staffPage(context(flash ? { flash } : {}), await staff.list(), oidc !== undefined),
          );
        }
        if (url.pathname === '/staff/add' && method === 'POST') {
          const id = (form.get('staff') ?? '').trim().toLowerCase();
          const password = form.get('password') ?? '';
          const subject = (form.get('oidcSubject') ?? '').trim();
          const name = (form.get('name') ?? '').trim();
          try {
            await staff.add({
              id,
              role: form.get('role') ?? '',
              ...(password ? { password } : {}),
              ...(subject ? { oidcSubject: subject } : {}),
              ...(name ? { name } : {}),
            });
          } catch (error) {
            await audit.write({
              action: 'staff.added',
              outcome: errorCode(error) ?? 'FAILED',
              subject: id.slice(0, 64),
              ...who,
            });
            throw error;
          }
          await audit.write({ action: 'staff.added', outcome: 'OK', subject: id, ...who });
          session.flash = t('staff.added', { staff: id });
          return redirect(response, '/staff');
        }
        if (url.pathname === '/staff/remove' && method === 'POST') {
          const id = form.get('staff') ?? '';
          try {
            await staff.remove(id);
          } catch (error) {
            await audit.write({
              action: 'staff.removed',
              outcome: errorCode(error) ?? 'FAILED',
              subject: id.slice(0, 64),
              ...who,
            });
            throw error;
          }
          sessions.destroyFor(id);
          await audit.write({ action: 'staff.removed', outcome: 'OK', subject: id, ...who });
          session.flash = t('staff.removed', { staff: id });
          return redirect(response, '/staff');
        }
      }
      throw new HttpRefusal(404, 'error.notFound');
    } catch (error) {
      if (error instanceof HttpRefusal) {
        sendHtml(
          response,
          error.status,
          messagePage(context(), t('error.title'), t(error.key, error.params)),
        );
        return;
      }
      const code = errorCode(error);
      if (code !== undefined) {
        logger.warn('refused', { requestId, code });
        const status = error instanceof ApiError && error.status >= 500 ? 502 : 409;
        const back = url.pathname.startsWith('/staff')
          ? '/staff'
          : url.pathname.startsWith('/patient')
            ? '/patient'
            : '/';
        sendHtml(response, status, messagePage(context(), t('error.title'), t('error.code', { code }), back));
        return;
      }
      // Only the error's kind is logged: messages can carry paths or values ICT should not ship out.
      logger.error('failed', { requestId, error: (error as Error | null)?.name ?? 'unknown' });
      sendHtml(
        response,
        500,
        messagePage(context(), t('error.title'), t('error.internal', { ref: requestId })),
      );
    }
  }

  async function signIn(
    response: ServerResponse,
    member: StaffMember,
    via: 'password' | 'oidc',
    client: string,
    then: () => void,
  ): Promise<void> {
    const { id } = sessions.create(member.id, member.role, member.stamp);
    const operatorRef = await service.operatorRef(member.id).catch(() => undefined);
    await audit.write({
      action: 'signin',
      via,
      outcome: 'OK',
      staffId: member.id,
      ...(operatorRef ? { operatorRef } : {}),
      client,
    });
    addCookies(response, [
      cookie(sessionCookie, id, { secure }),
      cookie(loginCookie, '', { secure, maxAgeSeconds: 0 }),
    ]);
    then();
  }

  function checkOrigin(request: IncomingMessage): void {
    if (request.headers['sec-fetch-site'] === 'cross-site') throw new HttpRefusal(403, 'error.csrf');
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      const expected = `${secure ? 'https' : 'http'}://${request.headers.host ?? ''}`;
      if (origin.toLowerCase() !== expected.toLowerCase()) throw new HttpRefusal(403, 'error.csrf');
    } else if (origin === 'null') {
      throw new HttpRefusal(403, 'error.csrf');
    }
  }

  const server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createHttpServer(handler);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new ConsoleError(
          'CONSOLE_BIND_FAILED',
          `cannot listen on ${host}:${options.port ?? DEFAULT_CONSOLE_PORT} (${error.code ?? 'error'})`,
        ),
      ),
    );
    server.listen(options.port ?? DEFAULT_CONSOLE_PORT, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  if (isLoopback(host)) {
    allowedHosts = new Set([
      `${shownHost}:${port}`,
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
    ]);
  }
  const url = `${secure ? 'https' : 'http'}://${shownHost}:${port}`;
  oidc?.listeningAt(url);
  logger.info('listening', { url, tls: secure, oidc: oidc !== undefined });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The stable code of an expected refusal, or undefined for a failure. */
function errorCode(error: unknown): string | undefined {
  if (error instanceof ConsoleError || error instanceof ApiError) return error.code;
  if (isProtocolError(error)) return error.code;
  if (error instanceof UsageError) return 'CONNECTOR_NOT_READY';
  return undefined;
}

/** The path without its query, with ids folded, for logs. */
function routeName(raw: string | undefined): string {
  const path = (raw ?? '/').split('?')[0]!;
  return path.length > 64 ? `${path.slice(0, 64)}…` : path;
}

function setSecurityHeaders(response: ServerResponse, nonce: string, secure: boolean): void {
  response.setHeader(
    'content-security-policy',
    [
      "default-src 'none'",
      `style-src 'nonce-${nonce}'`,
      `script-src 'nonce-${nonce}'`,
      "img-src 'self' data:",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
  );
  response.setHeader('x-content-type-options', 'nosniff');
  response.setHeader('x-frame-options', 'DENY');
  // same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` with the console's own forms.
  response.setHeader('referrer-policy', 'same-origin');
  response.setHeader('cross-origin-opener-policy', 'same-origin');
  response.setHeader('cross-origin-resource-policy', 'same-origin');
  response.setHeader('permissions-policy', 'camera=(), microphone=(), geolocation=()');
  // Pages show patient data and QR codes (pairing secrets): never kept by the browser or a proxy.
  response.setHeader('cache-control', 'no-store');
  if (secure) response.setHeader('strict-transport-security', 'max-age=31536000');
}

/** Adds Set-Cookie lines to those already set on this response. */
function addCookies(response: ServerResponse, lines: readonly string[]): void {
  const before = response.getHeader('set-cookie');
  const kept = before === undefined ? [] : Array.isArray(before) ? before : [String(before)];
  response.setHeader('set-cookie', [...kept, ...lines]);
}

function redirect(response: ServerResponse, location: string): void {
  response.writeHead(303, { location }).end();
}

function sendHtml(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(body);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

/** An url-encoded form of at most 16 KiB; anything else is refused before it is read whole. */
async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new HttpRefusal(415, 'error.csrf');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new HttpRefusal(413, 'error.csrf');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
