// Who is signed in, and proof that a form came from the console's own page. Sessions live in
// the console's memory only (a restart signs everyone out, which is the safe direction); the
// cookie carries a random id and the server keys its map by the id's SHA-256, so a heap dump or
// a log line with the key does not hand out a session. Every state-changing form carries the
// session's CSRF token, compared in constant time; sign-in (which has no session yet) uses a
// short-lived pre-session token bound to a cookie of its own. Failed sign-ins are counted per
// account and per client address, in a sliding window.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Language } from './i18n.ts';
import type { Role } from './staff.ts';

export const SESSION_IDLE_MS = 15 * 60_000;
export const SESSION_MAX_MS = 8 * 3600_000;

export interface Session {
  readonly staffId: string;
  readonly role: Role;
  /** The account's stamp at sign-in (staff.ts): a changed password or role ends the session. */
  readonly stamp: string;
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
  /** The patient the member of staff looked up: kept here so the number never sits in a URL. */
  patientNumber?: string;
  lang?: Language;
  /** One message for the next page shown (after a redirect). */
  flash?: string;
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time comparison of two tokens (different lengths are simply unequal). */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A new session (a new id every sign-in: no fixation); returns the cookie value. */
  create(staffId: string, role: Role, stamp: string, lang?: Language): { id: string; session: Session } {
    this.#sweep();
    const id = randomToken();
    const now = this.#now();
    const session: Session = {
      staffId,
      role,
      stamp,
      csrf: randomToken(),
      createdAt: now,
      lastSeen: now,
      ...(lang ? { lang } : {}),
    };
    this.#sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session for a cookie value, its idle timer renewed; undefined if none or expired. */
  get(id: string | undefined): Session | undefined {
    if (!id || id.length > 100) return undefined;
    const key = digest(id);
    const session = this.#sessions.get(key);
    if (!session) return undefined;
    const now = this.#now();
    if (now - session.lastSeen > SESSION_IDLE_MS || now - session.createdAt > SESSION_MAX_MS) {
      this.#sessions.delete(key);
      return undefined;
    }
    session.lastSeen = now;
    return session;
  }

  destroy(id: string | undefined): void {
    if (id) this.#sessions.delete(digest(id));
  }

  /** Ends every session of an account (removed, or its password changed). */
  destroyFor(staffId: string): void {
    for (const [key, session] of this.#sessions) if (session.staffId === staffId) this.#sessions.delete(key);
  }

  get size(): number {
    return this.#sessions.size;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, session] of this.#sessions) {
      if (now - session.lastSeen > SESSION_IDLE_MS || now - session.createdAt > SESSION_MAX_MS) {
        this.#sessions.delete(key);
      }
    }
  }
}

/** Failed attempts per key within a sliding window; refuses once `limit` is reached. */
export class AttemptLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(limit: number, windowMs: number, now: () => number = Date.now) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  #recent(key: string): number[] {
    const since = this.#now() - this.#windowMs;
    const recent = (this.#failures.get(key) ?? []).filter((at) => at > since);
    if (recent.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, recent);
    return recent;
  }

  blocked(key: string): boolean {
    return this.#recent(key).length >= this.#limit;
  }

  fail(key: string): void {
    // Bounded memory under a flood of distinct keys: the oldest keys go first.
    if (this.#failures.size >= 10_000 && !this.#failures.has(key)) {
      this.#failures.delete(this.#failures.keys().next().value!);
    }
    this.#failures.set(key, [...this.#recent(key), this.#now()]);
  }

  succeed(key: string): void {
    this.#failures.delete(key);
  }
}

/** Cookies from a Cookie header (the first of each name wins, as browsers send the most specific first). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    if (!cookies.has(name)) cookies.set(name, part.slice(at + 1).trim());
  }
  return cookies;
}

/** A Set-Cookie value: HttpOnly and SameSite=Strict always, Secure under TLS. */
export function cookie(
  name: string,
  value: string,
  options: { secure: boolean; maxAgeSeconds?: number; path?: string },
): string {
  const parts = [`${name}=${value}`, `Path=${options.path ?? '/'}`, 'HttpOnly', 'SameSite=Strict'];
  if (options.secure) parts.push('Secure');
  if (options.maxAgeSeconds !== undefined) parts.push(`Max-Age=${options.maxAgeSeconds}`);
  return parts.join('; ');
}
