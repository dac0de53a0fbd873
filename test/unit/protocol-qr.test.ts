import { beforeAll, describe, expect, it } from 'vitest';
import type { KeyPair } from '../../shared/core/crypto/index.ts';
import { generateKeyPair, importPublicKey } from '../../shared/core/crypto/index.ts';
import type { InvitationQr } from '../../shared/core/protocol/index.ts';
import {
  canonicalApiBase,
  decodeInvitationQr,
  encodeInvitationQr,
  fromBase64Url,
  invitationQrLength,
  newInvitationToken,
  newRandomId,
  QR_MAX_LENGTH,
  toBase64Url,
} from '../../shared/core/protocol/index.ts';
import { protocolCodeOf as codeOf } from '../helpers/protocol-errors.ts';

// The example in docs/PROTOCOL.md §4, with the witness key (bytes 0x60..0x7f) after the hospital key.
const EXAMPLE_QR =
  'CB1:IWh0dHBzOi8vYXBpLmNsaW5pYy1icmlkZ2UuZXhhbXBsZQ1zdC1leGFtcGxlLXpoEBESExQVFhcYGRobHB0eH0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fv1GTmpgG9yLeyjXrF6w3GM8dsGjTL7gnswT92oMFT-tVRUMyAAAALRU0u_8Cr2Q6E6kEhHeck7V1_DFh3Oltt85gDYKrA1d062Q2OuxgYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-fw';

let hospital: KeyPair;
let qr: InvitationQr;

beforeAll(async () => {
  hospital = generateKeyPair();
  qr = {
    apiBase: 'https://api.clinic-bridge.example',
    hospitalId: 'st-example-zh',
    invitationId: newRandomId(),
    token: newInvitationToken(),
    bindingSecret: new Uint8Array(32).fill(7),
    hospitalPublicKey: hospital.publicKey,
    witnessKey: Uint8Array.from({ length: 32 }, (_, i) => 200 + i),
  };
});

/** Re-encodes a decoded payload body after `edit` (to build malformed inputs). */
function withBytes(text: string, edit: (bytes: Uint8Array) => Uint8Array): string {
  return `CB1:${toBase64Url(edit(fromBase64Url(text.slice(4))!))}`;
}

describe('invitation QR payload', () => {
  it('decodes the documented example', () => {
    const decoded = decodeInvitationQr(EXAMPLE_QR);
    expect(decoded).toMatchObject({
      apiBase: 'https://api.clinic-bridge.example',
      hospitalId: 'st-example-zh',
      invitationId: 'EBESExQVFhcYGRobHB0eHw',
      token: 'QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8',
    });
    expect(toBase64Url(decoded.bindingSecret)).toBe('v1GTmpgG9yLeyjXrF6w3GM8dsGjTL7gnswT92oMFT-s');
    expect(
      decoded.hospitalPublicKey.equals(
        importPublicKey('VUVDMgAAAC0VNLv_Aq9kOhOpBIR3nJO1dfwxYdzpbbfOYA2CqwNXdOtkNjrs'),
      ),
    ).toBe(true);
    expect(toBase64Url(decoded.witnessKey)).toBe('YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8');
    expect(encodeInvitationQr(decoded)).toBe(EXAMPLE_QR);
  });

  it('round-trips, witness key included, and stays within 430 characters at the largest field sizes', () => {
    const text = encodeInvitationQr(qr);
    expect(text.startsWith('CB1:')).toBe(true);
    const decoded = decodeInvitationQr(text);
    expect({ ...decoded, hospitalPublicKey: undefined }).toEqual({ ...qr, hospitalPublicKey: undefined });
    expect(decoded.hospitalPublicKey.equals(hospital.publicKey)).toBe(true);
    expect(toBase64Url(decoded.witnessKey)).toBe(toBase64Url(qr.witnessKey));
    expect(QR_MAX_LENGTH).toBe(430);

    const largest = {
      ...qr,
      apiBase: `https://${'a'.repeat(60)}.example:8443/`.padEnd(120, 'p'),
      hospitalId: `h${'x'.repeat(39)}`,
    };
    expect(largest.apiBase.length).toBe(120);
    const big = encodeInvitationQr(largest);
    expect(big.length).toBe(invitationQrLength(120, 40));
    expect(big.length).toBeLessThanOrEqual(QR_MAX_LENGTH);
    expect(decodeInvitationQr(big).apiBase).toBe(largest.apiBase);
  });

  it('allows https anywhere and http only to 127.0.0.1', () => {
    for (const ok of [
      'https://api.example.org',
      'https://api.example.org:8443/cb/v',
      'http://127.0.0.1:8080',
    ]) {
      expect(canonicalApiBase(ok)).toBe(ok);
      expect(decodeInvitationQr(encodeInvitationQr({ ...qr, apiBase: ok })).apiBase).toBe(ok);
    }
    for (const bad of [
      'http://api.example.org',
      'http://localhost:8080',
      'http://127.0.0.2',
      'ftp://api.example.org',
      'https://user:pw@api.example.org',
      'https://api.example.org/?q=1',
      'https://api.example.org/#x',
      'https://api.example.org/',
      'https://api.example.org/cb/',
      'https://API.example.org',
      'https://api.example.org:443',
      'https://api.example.org/a b',
      'javascript:alert(1)',
      `https://${'a'.repeat(120)}.org`,
    ]) {
      expect({ bad, code: codeOf(() => encodeInvitationQr({ ...qr, apiBase: bad })) }).toEqual({
        bad,
        code: 'QR_API_BASE_INVALID',
      });
    }
  });

  it('rejects malformed payloads with stable codes', () => {
    const text = encodeInvitationQr(qr);
    expect(codeOf(() => decodeInvitationQr('CB2:AAAA'))).toBe('QR_VERSION_UNSUPPORTED');
    expect(codeOf(() => decodeInvitationQr('https://evil.example/pair'))).toBe('QR_MALFORMED');
    expect(codeOf(() => decodeInvitationQr(''))).toBe('QR_MALFORMED');
    expect(codeOf(() => decodeInvitationQr(`cb1:${text.slice(4)}`))).toBe('QR_MALFORMED');
    expect(codeOf(() => decodeInvitationQr(`${text}=`))).toBe('QR_MALFORMED');
    expect(codeOf(() => decodeInvitationQr(`${text.slice(0, 10)}+${text.slice(11)}`))).toBe('QR_MALFORMED');
    expect(codeOf(() => decodeInvitationQr(`CB1:${'A'.repeat(500)}`))).toBe('QR_MALFORMED');
    // Truncated anywhere, or with bytes appended.
    for (let cut = 1; cut < 159 + 33 + 13; cut += 7) {
      const code = codeOf(() => decodeInvitationQr(withBytes(text, (b) => b.subarray(0, b.length - cut))));
      expect(['QR_MALFORMED', 'QR_API_BASE_INVALID']).toContain(code);
    }
    expect(codeOf(() => decodeInvitationQr(withBytes(text, (b) => new Uint8Array([...b, 0]))))).toBe(
      'QR_MALFORMED',
    );
    // A bad hospital id, a bad key (flip the key tag), an api base length out of range.
    expect(
      codeOf(() =>
        decodeInvitationQr(
          withBytes(text, (b) => {
            const c = b.slice();
            c[1 + c[0]! + 1] = 0x2d; // hospital id starting with "-"
            return c;
          }),
        ),
      ),
    ).toBe('QR_MALFORMED');
    expect(
      codeOf(() =>
        decodeInvitationQr(
          withBytes(text, (b) => {
            const c = b.slice();
            c[c.length - 32 - 45] = 0x52; // "UEC2" → "REC2": a private key tag
            return c;
          }),
        ),
      ),
    ).toBe('QR_MALFORMED');
    expect(
      codeOf(() =>
        decodeInvitationQr(
          withBytes(text, (b) => {
            const c = b.slice();
            c[0] = 200;
            return c;
          }),
        ),
      ),
    ).toBe('QR_API_BASE_INVALID');
    expect(
      codeOf(() =>
        decodeInvitationQr(
          withBytes(text, (b) => {
            const c = b.slice();
            c[1 + 4] = 0x3a; // "https" → "http:" …
            return c;
          }),
        ),
      ),
    ).toBe('QR_API_BASE_INVALID');
  });

  it('refuses to encode bad fields', () => {
    expect(codeOf(() => encodeInvitationQr({ ...qr, hospitalId: 'X' }))).toBe('QR_MALFORMED');
    expect(codeOf(() => encodeInvitationQr({ ...qr, invitationId: 'short' }))).toBe('QR_MALFORMED');
    expect(codeOf(() => encodeInvitationQr({ ...qr, token: newRandomId() }))).toBe('QR_MALFORMED');
    expect(codeOf(() => encodeInvitationQr({ ...qr, bindingSecret: new Uint8Array(16) }))).toBe(
      'QR_MALFORMED',
    );
    for (const witnessKey of [new Uint8Array(31), new Uint8Array(33), undefined]) {
      expect(
        codeOf(() => encodeInvitationQr({ ...qr, witnessKey: witnessKey as unknown as Uint8Array })),
      ).toBe('QR_MALFORMED');
    }
  });

  it('requires exactly 32 bytes of witness key: a payload without one (the old layout) is refused', () => {
    const text = encodeInvitationQr(qr);
    const withoutWitness = withBytes(text, (b) => b.subarray(0, b.length - 32));
    expect(codeOf(() => decodeInvitationQr(withoutWitness))).toBe('QR_MALFORMED');
    expect(codeOf(() => decodeInvitationQr(withBytes(text, (b) => b.subarray(0, b.length - 1))))).toBe(
      'QR_MALFORMED',
    );
  });
});
