// The console's OIDC client against a provider built here (node:http + jose) that can be made to
// misbehave: only an ID token signed by the provider's published key, for this client, from this
// issuer, fresh, carrying the nonce of this sign-in, and obtained with the PKCE verifier whose
// hash went out, names a member of staff; a state is good once and only with its cookie.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcClient } from '../../clients/connector/console/oidc.ts';

describe('console OIDC client', () => {
  let server: Server;
  let issuer: string;
  let signingKey: CryptoKey;
  let otherKey: CryptoKey;
  /** What the token endpoint does with the next request. */
  let answer: (form: URLSearchParams) => Promise<{ status: number; body: unknown }>;
  const challenges = new Map<string, string>(); // code -> challenge

  beforeAll(async () => {
    const published = await generateKeyPair('ES256');
    signingKey = published.privateKey;
    otherKey = (await generateKeyPair('ES256')).privateKey;
    const jwk = { ...(await exportJWK(published.publicKey)), kid: 'k1', alg: 'ES256' };
    server = createServer((request, response) => {
      const send = (status: number, body: unknown) =>
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (request.url === '/.well-known/openid-configuration') {
        return send(200, {
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
        });
      }
      if (request.url === '/jwks') return send(200, { keys: [jwk] });
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        void answer(new URLSearchParams(body)).then(({ status, body }) => send(status, body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const client = () =>
    new OidcClient({ issuer, clientId: 'cb-console', redirectUri: 'http://127.0.0.1:1/login/oidc/callback' });

  /** A sign-in up to the callback: the provider answers with a token built from `claims`. */
  async function signIn(
    claims: (nonce: string) => JWTPayload,
    options: { key?: CryptoKey; iat?: number; checkPkce?: boolean } = {},
  ): Promise<string> {
    const oidc = client();
    const { url, state } = await oidc.start();
    const query = new URL(url).searchParams;
    expect(query.get('code_challenge_method')).toBe('S256');
    challenges.set('the-code', query.get('code_challenge')!);
    const nonce = query.get('nonce')!;
    answer = async (form) => {
      const verifier = form.get('code_verifier') ?? '';
      if (
        options.checkPkce !== false &&
        createHash('sha256').update(verifier).digest('base64url') !== challenges.get(form.get('code')!)
      ) {
        return { status: 400, body: { error: 'invalid_grant' } };
      }
      const jwt = new SignJWT(claims(nonce))
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuedAt(options.iat)
        .setExpirationTime((options.iat ?? Math.floor(Date.now() / 1000)) + 300);
      return { status: 200, body: { id_token: await jwt.sign(options.key ?? signingKey) } };
    };
    return oidc.finish(new URLSearchParams({ code: 'the-code', state }), state);
  }

  const good = (nonce: string): JWTPayload => ({
    iss: issuer,
    aud: 'cb-console',
    sub: 's1',
    nonce,
    preferred_username: 'anna@hospital',
  });

  it('names the member of staff from a good token', async () => {
    await expect(signIn(good)).resolves.toBe('anna@hospital');
  });

  it('refuses a token for another client, from another issuer, with another nonce, or old', async () => {
    const refused = { code: 'OIDC_TOKEN_INVALID' };
    await expect(signIn((nonce) => ({ ...good(nonce), aud: 'someone-else' }))).rejects.toMatchObject(refused);
    await expect(signIn((nonce) => ({ ...good(nonce), iss: 'https://evil.example' }))).rejects.toMatchObject(
      refused,
    );
    await expect(signIn((nonce) => ({ ...good(nonce), nonce: `${nonce}x` }))).rejects.toMatchObject(refused);
    await expect(signIn(good, { iat: Math.floor(Date.now() / 1000) - 3600 })).rejects.toMatchObject(refused);
  });

  it('refuses a token signed with a key the provider does not publish', async () => {
    await expect(signIn(good, { key: otherKey })).rejects.toMatchObject({ code: 'OIDC_TOKEN_INVALID' });
  });

  it('refuses a token without the staff claim', async () => {
    await expect(
      signIn((nonce) => ({ iss: issuer, aud: 'cb-console', sub: 's1', nonce })),
    ).rejects.toMatchObject({ code: 'OIDC_NO_ACCOUNT' });
  });

  it('accepts a state once, and only with the cookie that carried it', async () => {
    const oidc = client();
    const { state } = await oidc.start();
    answer = async () => ({ status: 400, body: { error: 'invalid_grant' } });
    await expect(
      oidc.finish(new URLSearchParams({ code: 'c', state }), 'another-state'),
    ).rejects.toMatchObject({ code: 'OIDC_STATE_INVALID' });
    // The mismatch used it up.
    await expect(oidc.finish(new URLSearchParams({ code: 'c', state }), state)).rejects.toMatchObject({
      code: 'OIDC_STATE_INVALID',
    });
    const second = await oidc.start();
    await expect(
      oidc.finish(new URLSearchParams({ error: 'access_denied', state: second.state }), second.state),
    ).rejects.toMatchObject({ code: 'OIDC_PROVIDER_ERROR' });
  });

  it('reports an unreachable provider as the provider’s error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const oidc = new OidcClient({ issuer: `http://127.0.0.1:${port}`, clientId: 'c' });
    oidc.listeningAt('http://127.0.0.1:1');
    await expect(oidc.start()).rejects.toMatchObject({ code: 'OIDC_PROVIDER_ERROR' });
  });

  it('refuses an issuer or callback in the clear beyond this machine', () => {
    expect(() => new OidcClient({ issuer: 'http://idp.hospital.example', clientId: 'c' })).toThrow(
      expect.objectContaining({ code: 'CONSOLE_OIDC_CONFIG' }),
    );
    expect(
      () =>
        new OidcClient({
          issuer: 'https://idp.hospital.example',
          clientId: 'c',
          redirectUri: 'http://console.hospital.example/login/oidc/callback',
        }),
    ).toThrow(expect.objectContaining({ code: 'CONSOLE_OIDC_CONFIG' }));
  });
});
