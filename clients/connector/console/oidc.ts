// Sign-in through the hospital's identity provider: OpenID Connect's authorization-code flow with
// PKCE (S256), state and nonce. The provider is found by discovery from its issuer; the ID token
// is verified with jose against the provider's published keys (signature, issuer, audience,
// expiry, nonce). The provider only says who someone is: the console then looks the configured
// claim up in its own staff store, so an employee without a console account (and role) is
// refused even with a valid token.
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { ConsoleError } from './errors.ts';

export interface OidcOptions {
  /** The issuer URL exactly as the provider's discovery document states it. */
  readonly issuer: string;
  readonly clientId: string;
  /** For a confidential client (client_secret_basic); a public client sends only PKCE. */
  readonly clientSecret?: string;
  /**
   * The console's callback URL as registered at the provider (default: the console's own URL +
   * /login/oidc/callback; set it when the console is reached through another name or a proxy).
   */
  readonly redirectUri?: string;
  /** The ID-token claim that names the member of staff (default preferred_username). */
  readonly claim?: string;
  readonly scopes?: readonly string[];
}

const discoverySchema = z.looseObject({
  issuer: z.string(),
  authorization_endpoint: z.url(),
  token_endpoint: z.url(),
  jwks_uri: z.url(),
});
type Discovery = z.output<typeof discoverySchema>;

const tokenResponseSchema = z.looseObject({ id_token: z.string().min(1).max(20_000) });

/** What an unfinished sign-in keeps between the redirect out and the callback (in memory, 10 minutes). */
interface Pending {
  readonly verifier: string;
  readonly nonce: string;
  readonly createdAt: number;
}

const PENDING_MS = 10 * 60_000;

function loopback(url: URL): boolean {
  return url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
}

/** Failure codes the sign-in page shows (no token or provider text ever reaches the page). */
export type OidcFailure =
  'OIDC_STATE_INVALID' | 'OIDC_PROVIDER_ERROR' | 'OIDC_TOKEN_INVALID' | 'OIDC_NO_ACCOUNT';

export class OidcSignInError extends Error {
  readonly code: OidcFailure;
  constructor(code: OidcFailure) {
    super(code);
    this.code = code;
    this.name = 'OidcSignInError';
  }
}

export class OidcClient {
  readonly options: OidcOptions;
  #redirectUri: string | undefined;
  readonly #pending = new Map<string, Pending>();
  #discovery: Promise<{ metadata: Discovery; keys: ReturnType<typeof createRemoteJWKSet> }> | undefined;

  constructor(options: OidcOptions) {
    for (const [name, value] of [
      ['issuer', options.issuer],
      ['redirectUri', options.redirectUri],
    ] as const) {
      if (value === undefined) continue;
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new ConsoleError('CONSOLE_OIDC_CONFIG', `the OIDC ${name} is not a URL`);
      }
      // Tokens and codes travel over these: cleartext only on this machine (tests, a local proxy).
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback(url))) {
        throw new ConsoleError('CONSOLE_OIDC_CONFIG', `the OIDC ${name} must be https`);
      }
    }
    if (!options.clientId) throw new ConsoleError('CONSOLE_OIDC_CONFIG', 'the OIDC clientId is missing');
    this.options = options;
    this.#redirectUri = options.redirectUri;
  }

  /** The console's own URL, once it listens: the callback unless one was configured. */
  listeningAt(consoleUrl: string): void {
    this.#redirectUri ??= `${consoleUrl}/login/oidc/callback`;
  }

  get redirectUri(): string {
    if (!this.#redirectUri) throw new Error('the console is not listening yet');
    return this.#redirectUri;
  }

  #discover() {
    this.#discovery ??= (async () => {
      const url = `${this.options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      // An unreachable or garbled provider is the provider's error, not the console's.
      const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) }).catch(
        () => undefined,
      );
      if (!response?.ok) throw new OidcSignInError('OIDC_PROVIDER_ERROR');
      const metadata = discoverySchema.safeParse(await response.json().catch(() => undefined));
      // The issuer must be the one configured (OpenID Connect Discovery §4.3).
      if (!metadata.success || metadata.data.issuer !== this.options.issuer) {
        throw new OidcSignInError('OIDC_PROVIDER_ERROR');
      }
      return { metadata: metadata.data, keys: createRemoteJWKSet(new URL(metadata.data.jwks_uri)) };
    })();
    // A failed discovery is retried at the next sign-in rather than cached forever.
    this.#discovery.catch(() => (this.#discovery = undefined));
    return this.#discovery;
  }

  /** Starts a sign-in: the provider URL to redirect to, and the state to bind to the browser. */
  async start(now = Date.now()): Promise<{ url: string; state: string }> {
    const { metadata } = await this.#discover();
    for (const [state, pending] of this.#pending) {
      if (now - pending.createdAt > PENDING_MS) this.#pending.delete(state);
    }
    if (this.#pending.size > 1000) throw new OidcSignInError('OIDC_PROVIDER_ERROR');
    const state = randomBytes(24).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    const nonce = randomBytes(24).toString('base64url');
    this.#pending.set(state, { verifier, nonce, createdAt: now });
    const url = new URL(metadata.authorization_endpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.options.clientId);
    url.searchParams.set('redirect_uri', this.redirectUri);
    url.searchParams.set('scope', ['openid', ...(this.options.scopes ?? ['profile', 'email'])].join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('nonce', nonce);
    url.searchParams.set('code_challenge', createHash('sha256').update(verifier).digest('base64url'));
    url.searchParams.set('code_challenge_method', 'S256');
    return { url: url.toString(), state };
  }

  /**
   * Finishes a sign-in from the callback's query and the state the browser's cookie held:
   * returns the value of the configured claim. Each state is used once.
   */
  async finish(query: URLSearchParams, boundState: string | undefined, now = Date.now()): Promise<string> {
    const state = query.get('state') ?? '';
    const pending = this.#pending.get(state);
    this.#pending.delete(state);
    if (!pending || boundState !== state || now - pending.createdAt > PENDING_MS) {
      throw new OidcSignInError('OIDC_STATE_INVALID');
    }
    const code = query.get('code');
    if (query.has('error') || !code) throw new OidcSignInError('OIDC_PROVIDER_ERROR');
    const { metadata, keys } = await this.#discover();
    const body = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.redirectUri,
      code_verifier: pending.verifier,
    });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (this.options.clientSecret) {
      const encode = (text: string) => encodeURIComponent(text);
      headers.authorization = `Basic ${Buffer.from(`${encode(this.options.clientId)}:${encode(this.options.clientSecret)}`).toString('base64')}`;
    } else {
      body.set('client_id', this.options.clientId);
    }
    const response = await fetch(metadata.token_endpoint, {
      method: 'POST',
      headers,
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    if (!response?.ok) throw new OidcSignInError('OIDC_PROVIDER_ERROR');
    const tokens = tokenResponseSchema.safeParse(await response.json().catch(() => undefined));
    if (!tokens.success) throw new OidcSignInError('OIDC_PROVIDER_ERROR');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(tokens.data.id_token, keys, {
        issuer: metadata.issuer,
        audience: this.options.clientId,
        maxTokenAge: '10m',
        clockTolerance: 60,
      }));
    } catch {
      throw new OidcSignInError('OIDC_TOKEN_INVALID');
    }
    if (payload.nonce !== pending.nonce) throw new OidcSignInError('OIDC_TOKEN_INVALID');
    const value = payload[this.options.claim ?? 'preferred_username'];
    if (typeof value !== 'string' || value === '' || value.length > 256) {
      throw new OidcSignInError('OIDC_NO_ACCOUNT');
    }
    return value;
  }
}
