import { beforeAll, describe, expect, it } from 'vitest';
import type { KeyPair, PublicKey } from '../../shared/core/crypto/index.ts';
import { generateKeyPair, importKeyPair } from '../../shared/core/crypto/index.ts';
import type { KeyId, VerifyRequestOptions } from '../../shared/core/protocol/index.ts';
import {
  bodyDigest,
  deviceKeyId,
  fromBase64Url,
  hospitalKeyId,
  parseKeyId,
  ProtocolError,
  requestSigningString,
  signedMessageUnverified,
  signRequest,
  verifyRequest,
} from '../../shared/core/protocol/index.ts';
import { protocolCodeOfAsync as codeOf } from '../helpers/protocol-errors.ts';

// The worked example in docs/PROTOCOL.md §7. Themis signatures are randomised (ECDSA), so the
// document shows one valid signature; this test proves it verifies and that the signed text is
// exactly the one printed there.
const EXAMPLE = {
  devicePrivateKey: 'UkVDMgAAAC1_Ak2MAJuOlvIge1PEl2GkB6LAaf9ifx_GRIWUSBJDO2VG0AJm',
  audience: 'https://api.clinic-bridge.example',
  devicePublicKey: 'VUVDMgAAAC2fIV30AiTZSYpINOr0o-cgsTHvAQ8wuRlMXiyKhWBIadA5XTCX',
  deviceId: '56rf8cVN6JNYk--Rd2mpOWxvzkAua9hALBm3HHDM37U',
  target: '/records/v1/records/gIGCg4SFhoeIiYqLjI2Ojw/ack',
  body: '{"outcome":"stored"}',
  bodySha256: 'NhLke_hydfJLeCBz4-tz6kEun2UwpO-KYIBrmDpHVxQ',
  timestamp: '1767225600',
  nonce: 'oKGio6SlpqeoqaqrrK2urw',
  signingString:
    'CB-REQUEST-V2\nhttps://api.clinic-bridge.example\nPOST\n/records/v1/records/gIGCg4SFhoeIiYqLjI2Ojw/ack\nNhLke_hydfJLeCBz4-tz6kEun2UwpO-KYIBrmDpHVxQ\n1767225600\noKGio6SlpqeoqaqrrK2urw\ndevice:56rf8cVN6JNYk--Rd2mpOWxvzkAua9hALBm3HHDM37U',
  signature:
    'ICYEJuQAAABHAAAAQ0ItUkVRVUVTVC1WMgpodHRwczovL2FwaS5jbGluaWMtYnJpZGdlLmV4YW1wbGUKUE9TVAovcmVjb3Jkcy92MS9yZWNvcmRzL2dJR0NnNFNGaG9lSWlZcUxqSTJPancvYWNrCk5oTGtlX2h5ZGZKTGVDQno0LXR6NmtFdW4yVXdwTy1LWUlCcm1EcEhWeFEKMTc2NzIyNTYwMApvS0dpbzZTbHBxZW9xYXFycksydXJ3CmRldmljZTo1NnJmOGNWTjZKTllrLS1SZDJtcE9XeHZ6a0F1YTloQUxCbTNISERNMzdVMEUCIQD1P_74ouqQaExqHAIEo3vi1WJPibEGBW_Altq7LOWodgIgVt8ENVkuntA6oO7CJhhj7q4m4sGi3gRj3b4uOgxjppo',
};

const encoder = new TextEncoder();
let device: KeyPair;
let other: KeyPair;
let hospital: KeyPair;
const now = new Date('2026-01-01T00:00:00Z');

/** An in-memory nonce store with the contract verifyRequest expects. */
function nonceStore() {
  const seen = new Map<string, Date>();
  return {
    seen,
    rememberNonce: async (keyId: string, nonce: string, expiresAt: Date) => {
      const key = `${keyId} ${nonce}`;
      if (seen.has(key)) return false;
      seen.set(key, expiresAt);
      return true;
    },
  };
}

function registry(keys: PublicKey[]) {
  return async (keyId: KeyId) => keys.find((key) => key.fingerprint === keyId.fingerprint);
}

beforeAll(async () => {
  device = importKeyPair(EXAMPLE.devicePrivateKey, EXAMPLE.devicePublicKey);
  other = generateKeyPair();
  hospital = generateKeyPair();
});

function signed(overrides: Partial<Parameters<typeof signRequest>[0]> = {}): {
  headers: Record<string, string>;
  method: string;
  target: string;
  body: Uint8Array;
} {
  const request = {
    audience: EXAMPLE.audience,
    method: 'POST',
    target: EXAMPLE.target,
    body: encoder.encode(EXAMPLE.body),
    keyId: deviceKeyId(device.publicKey.fingerprint),
    privateKey: device.privateKey,
    now,
    ...overrides,
  };
  return {
    headers: signRequest(request),
    method: request.method,
    target: request.target,
    body: request.body,
  };
}

function options(
  request: { headers: Record<string, string | string[]>; method: string; target: string; body: Uint8Array },
  overrides: Partial<VerifyRequestOptions> = {},
): VerifyRequestOptions {
  return {
    audience: EXAMPLE.audience,
    method: request.method,
    target: request.target,
    body: request.body,
    headers: request.headers,
    accept: ['device'],
    clock: { now: () => now },
    resolveKey: registry([device.publicKey, other.publicKey, hospital.publicKey]),
    rememberNonce: nonceStore().rememberNonce,
    ...overrides,
  };
}

describe('request signing', () => {
  it('matches the worked example in docs/PROTOCOL.md', async () => {
    expect(device.publicKey.fingerprint).toBe(EXAMPLE.deviceId);
    expect(bodyDigest(encoder.encode(EXAMPLE.body))).toBe(EXAMPLE.bodySha256);
    expect(
      requestSigningString({
        audience: EXAMPLE.audience,
        method: 'POST',
        target: EXAMPLE.target,
        bodySha256: EXAMPLE.bodySha256,
        timestamp: EXAMPLE.timestamp,
        nonce: EXAMPLE.nonce,
        keyId: `device:${EXAMPLE.deviceId}`,
      }),
    ).toBe(EXAMPLE.signingString);
    const headers = {
      'cb-key-id': `device:${EXAMPLE.deviceId}`,
      'cb-timestamp': EXAMPLE.timestamp,
      'cb-nonce': EXAMPLE.nonce,
      'cb-signature': EXAMPLE.signature,
    };
    const verified = await verifyRequest(
      options({ headers, method: 'POST', target: EXAMPLE.target, body: encoder.encode(EXAMPLE.body) }),
    );
    expect(verified.keyId.id).toBe(EXAMPLE.deviceId);
    expect(verified.signedAt.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    // A fresh signature with the same nonce and time carries the same signed text.
    const fresh = signed({ nonce: EXAMPLE.nonce });
    const message = (text: string) =>
      Buffer.from(signedMessageUnverified(fromBase64Url(text)!, { maxBytes: 1024 }));
    expect(message(fresh.headers['CB-Signature']!).toString()).toBe(EXAMPLE.signingString);
    expect(message(EXAMPLE.signature).toString()).toBe(EXAMPLE.signingString);
  });

  it('a valid request verifies (headers in any case, as Node or fetch deliver them)', async () => {
    const request = signed();
    const lower = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
    for (const headers of [request.headers, lower]) {
      const verified = await verifyRequest(options({ ...request, headers }));
      expect(verified.publicKey.equals(device.publicKey)).toBe(true);
    }
  });

  it('another body, path, query or method: SIGNATURE_INVALID', async () => {
    const request = signed();
    for (const change of [
      { body: encoder.encode('{"outcome":"failed","errorCode":"CHUNK_INVALID"}') },
      { body: new Uint8Array(0) },
      { target: '/records/v1/records/AAAAAAAAAAAAAAAAAAAAAA/ack' },
      { target: `${EXAMPLE.target}?x=1` },
      { method: 'PUT' },
    ]) {
      expect(await codeOf(() => verifyRequest(options({ ...request, ...change })))).toBe('SIGNATURE_INVALID');
    }
  });

  it('signed for another deployment (staging, with a key reused in production): SIGNATURE_INVALID', async () => {
    const forStaging = signed({ audience: 'https://api.staging.clinic-bridge.example' });
    expect(await codeOf(() => verifyRequest(options(forStaging)))).toBe('SIGNATURE_INVALID');
    // The production verifier, given the same request, is the only thing that differs.
    expect(
      await codeOf(() =>
        verifyRequest(options(forStaging, { audience: 'https://api.staging.clinic-bridge.example' })),
      ),
    ).toBe('no error');
    expect(await codeOf(async () => signed({ audience: 'not an api base' }))).toBe('INVALID_REQUEST');
  });

  it('outside ±300 s: REQUEST_EXPIRED', async () => {
    const request = signed();
    for (const offset of [301_000, -301_000, 86_400_000]) {
      const clock = { now: () => new Date(now.getTime() + offset) };
      expect(await codeOf(() => verifyRequest(options(request, { clock })))).toBe('REQUEST_EXPIRED');
    }
    for (const offset of [300_000, -300_000]) {
      const clock = { now: () => new Date(now.getTime() + offset) };
      expect(await codeOf(() => verifyRequest(options(request, { clock })))).toBe('no error');
    }
  });

  it('the same nonce twice: REQUEST_REPLAYED, and remembered only until the window closes', async () => {
    const request = signed();
    const store = nonceStore();
    expect(await codeOf(() => verifyRequest(options(request, { rememberNonce: store.rememberNonce })))).toBe(
      'no error',
    );
    expect(await codeOf(() => verifyRequest(options(request, { rememberNonce: store.rememberNonce })))).toBe(
      'REQUEST_REPLAYED',
    );
    const [expiresAt] = [...store.seen.values()];
    expect(expiresAt!.getTime()).toBe(now.getTime() + 301_000);
  });

  it('forged or broken requests never reach the nonce store', async () => {
    const store = nonceStore();
    const request = signed();
    await codeOf(() =>
      verifyRequest(options({ ...request, body: new Uint8Array(1) }, { rememberNonce: store.rememberNonce })),
    );
    const forged = signed({ privateKey: other.privateKey });
    await codeOf(() => verifyRequest(options(forged, { rememberNonce: store.rememberNonce })));
    expect(store.seen.size).toBe(0);
  });

  it("another device's key under this device's id: SIGNATURE_INVALID", async () => {
    const forged = signed({ privateKey: other.privateKey });
    expect(await codeOf(() => verifyRequest(options(forged)))).toBe('SIGNATURE_INVALID');
  });

  it('a key the registry does not know, or of a kind the endpoint refuses: UNKNOWN_KEY', async () => {
    const request = signed();
    expect(
      await codeOf(() => verifyRequest(options(request, { resolveKey: registry([other.publicKey]) }))),
    ).toBe('UNKNOWN_KEY');
    // A registry bug returning some other key must not pass either.
    expect(
      await codeOf(() => verifyRequest(options(request, { resolveKey: async () => other.publicKey }))),
    ).toBe('UNKNOWN_KEY');
    const byHospital = signed({
      keyId: hospitalKeyId('st-example-zh', hospital.publicKey),
      privateKey: hospital.privateKey,
    });
    expect(await codeOf(() => verifyRequest(options(byHospital)))).toBe('UNKNOWN_KEY');
    const verified = await verifyRequest(options(byHospital, { accept: ['hospital'] }));
    expect(verified.keyId).toMatchObject({ kind: 'hospital', id: 'st-example-zh' });
  });

  it('a revoked device is refused by the key lookup: DEVICE_REVOKED', async () => {
    const resolveKey = async () => {
      throw new ProtocolError('DEVICE_REVOKED');
    };
    expect(await codeOf(() => verifyRequest(options(signed(), { resolveKey })))).toBe('DEVICE_REVOKED');
  });

  it('missing or malformed headers: SIGNATURE_MISSING, SIGNATURE_MALFORMED', async () => {
    const request = signed();
    expect(await codeOf(() => verifyRequest(options({ ...request, headers: {} })))).toBe('SIGNATURE_MISSING');
    const without = (name: string) =>
      Object.fromEntries(Object.entries(request.headers).filter(([key]) => key !== name));
    for (const name of Object.keys(request.headers)) {
      expect(await codeOf(() => verifyRequest(options({ ...request, headers: without(name) })))).toBe(
        'SIGNATURE_MALFORMED',
      );
    }
    for (const [name, value] of [
      ['CB-Key-Id', 'device:short'],
      ['CB-Key-Id', `hospital:st-example-zh`],
      ['CB-Timestamp', '1767225600.5'],
      ['CB-Timestamp', '-1'],
      ['CB-Timestamp', '01767225600'],
      ['CB-Nonce', 'AAAA'],
      ['CB-Nonce', `${request.headers['CB-Nonce']}=`],
      ['CB-Signature', 'not base64!'],
      ['CB-Signature', 'AAAA'],
      ['CB-Signature', 'A'.repeat(2000)],
    ] as const) {
      const headers = { ...request.headers, [name]: value };
      expect({
        name,
        value,
        code: await codeOf(() => verifyRequest(options({ ...request, headers }))),
      }).toEqual({
        name,
        value,
        code: 'SIGNATURE_MALFORMED',
      });
    }
    const duplicated = { ...request.headers, 'cb-nonce': request.headers['CB-Nonce']! };
    expect(await codeOf(() => verifyRequest(options({ ...request, headers: duplicated })))).toBe(
      'SIGNATURE_MALFORMED',
    );
    const asArray: Record<string, string | string[]> = {
      ...request.headers,
      'CB-Nonce': [request.headers['CB-Nonce']!, 'x'],
    };
    expect(await codeOf(() => verifyRequest(options({ ...request, headers: asArray })))).toBe(
      'SIGNATURE_MALFORMED',
    );
  });

  it('key ids parse strictly', () => {
    expect(parseKeyId(`device:${EXAMPLE.deviceId}`)).toMatchObject({
      kind: 'device',
      fingerprint: EXAMPLE.deviceId,
    });
    expect(parseKeyId(`hospital:st-example-zh:${EXAMPLE.deviceId}`)).toMatchObject({
      kind: 'hospital',
      id: 'st-example-zh',
    });
    for (const bad of [
      '',
      'device:',
      `device:${EXAMPLE.deviceId}:x`,
      `Device:${EXAMPLE.deviceId}`,
      'hospital:x:y',
    ]) {
      expect(parseKeyId(bad)).toBeUndefined();
    }
  });
});
