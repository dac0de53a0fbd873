// The device's apiBase rules for a development stack (docs/SANDBOX.md, PROTOCOL.md §4): production
// rules (the default) accept plain http to 127.0.0.1 only; a development build
// (`allowDevelopmentStack`) also accepts the marked form http://<non-global IPv4>[:port]/development-stack
// and nothing else over http. Every refusal is QR_API_BASE_INVALID. The QR payload's layout is the
// same for every apiBase, so each row is decoded from bytes built here, whatever the encoder says.
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../shared/core/crypto/index.ts';
import {
  canonicalApiBase,
  decodeInvitationQr,
  DEVELOPMENT_STACK_PATH,
  encodeInvitationQr,
  fromBase64Url,
  isDevelopmentApiBase,
  isNonGlobalIpv4,
  newInvitationToken,
  newRandomId,
  QR_PREFIX,
  toBase64Url,
  type InvitationQr,
  type InvitationQrRules,
} from '../../shared/core/protocol/index.ts';
import { protocolCodeOf } from '../helpers/protocol-errors.ts';

let qr: InvitationQr;
beforeAll(() => {
  qr = {
    apiBase: 'https://api.clinic-bridge.example',
    hospitalId: 'st-example-zh',
    invitationId: newRandomId(),
    token: newInvitationToken(),
    bindingSecret: new Uint8Array(32).fill(7),
    hospitalPublicKey: generateKeyPair().publicKey,
    witnessKey: Uint8Array.from({ length: 32 }, (_, i) => 200 + i),
  };
});

/** A payload carrying `apiBase` as is (the encoder refuses the bases a decoder must refuse). */
function qrWithApiBase(apiBase: string): string {
  const bytes = fromBase64Url(encodeInvitationQr(qr).slice(QR_PREFIX.length))!;
  const rest = bytes.subarray(1 + bytes[0]!);
  const ascii = Uint8Array.from(apiBase, (c) => c.charCodeAt(0));
  return QR_PREFIX + toBase64Url(Uint8Array.from([ascii.length, ...ascii, ...rest]));
}

function outcome(apiBase: string, rules?: InvitationQrRules): string {
  const text = qrWithApiBase(apiBase);
  return protocolCodeOf(() => {
    const decoded = rules === undefined ? decodeInvitationQr(text) : decodeInvitationQr(text, rules);
    if (decoded.apiBase !== apiBase) throw new Error(`decoded ${decoded.apiBase}`);
  });
}

const OK = 'no error';
const INVALID = 'QR_API_BASE_INVALID';
const DEV = DEVELOPMENT_STACK_PATH;

// [apiBase, production build, development build]
const MATRIX: readonly (readonly [string, string, string])[] = [
  ['https://api.clinic-bridge.example', OK, OK],
  ['https://192.168.1.20:8443/development-stack', OK, OK], // https: an ordinary deployment
  ['http://127.0.0.1:8470', OK, OK],
  [`http://127.0.0.1:8470${DEV}`, OK, OK],
  // The marked form, on every kind of non-global address: development builds only.
  [`http://192.168.1.20:8470${DEV}`, INVALID, OK],
  [`http://10.0.0.7:8470${DEV}`, INVALID, OK],
  [`http://172.31.255.254:8470${DEV}`, INVALID, OK],
  [`http://100.64.1.2:8470${DEV}`, INVALID, OK],
  [`http://169.254.10.1:8470${DEV}`, INVALID, OK],
  [`http://192.0.2.2:8470${DEV}`, INVALID, OK],
  [`http://127.0.0.2:8470${DEV}`, INVALID, OK],
  [`http://192.168.1.20${DEV}`, INVALID, OK],
  // Plain http in any other form: nobody.
  ['http://192.168.1.20:8470', INVALID, INVALID],
  ['http://127.0.0.2:8470', INVALID, INVALID],
  [`http://192.168.1.20:8470${DEV}/pairing`, INVALID, INVALID],
  ['http://192.168.1.20:8470/Development-Stack', INVALID, INVALID],
  [`http://192.168.1.20:8470${DEV}/`, INVALID, INVALID],
  [`http://8.8.8.8:8470${DEV}`, INVALID, INVALID],
  [`http://172.32.0.1:8470${DEV}`, INVALID, INVALID],
  [`http://192.169.0.1:8470${DEV}`, INVALID, INVALID],
  [`http://100.128.0.1:8470${DEV}`, INVALID, INVALID],
  [`http://laptop.local:8470${DEV}`, INVALID, INVALID],
  [`http://localhost:8470${DEV}`, INVALID, INVALID],
  [`http://[fd00::2]:8470${DEV}`, INVALID, INVALID],
  [`http://192.168.001.020:8470${DEV}`, INVALID, INVALID],
  [`http://3232235796:8470${DEV}`, INVALID, INVALID],
  [`http://user@192.168.1.20:8470${DEV}`, INVALID, INVALID],
  [`http://192.168.1.20:80${DEV}`, INVALID, INVALID],
  [`http://192.168.1.20:8470${DEV}?x=1`, INVALID, INVALID],
  [`HTTP://192.168.1.20:8470${DEV}`, INVALID, INVALID],
];

describe('development-stack invitations', () => {
  it.each(MATRIX)('%s: production %s, development build %s', (apiBase, production, development) => {
    expect(outcome(apiBase)).toBe(production);
    expect(outcome(apiBase, {})).toBe(production);
    expect(outcome(apiBase, { allowDevelopmentStack: false })).toBe(production);
    expect(outcome(apiBase, { allowDevelopmentStack: true })).toBe(development);
  });

  it('production rules refuse plain http to every address but 127.0.0.1', () => {
    for (const [apiBase] of MATRIX) {
      const http = /^http:\/\/([^/:]+)/i.exec(apiBase);
      if (http && http[1] !== '127.0.0.1')
        expect({ apiBase, code: outcome(apiBase) }).toEqual({ apiBase, code: INVALID });
    }
  });

  it('only the boolean true from the build opens the development rule', () => {
    const apiBase = `http://192.168.1.20:8470${DEV}`;
    for (const sloppy of ['true', 1, {}, 'yes']) {
      expect(outcome(apiBase, { allowDevelopmentStack: sloppy as unknown as boolean })).toBe(INVALID);
    }
  });

  it('says why a production build refuses a development invitation', () => {
    const text = qrWithApiBase(`http://192.168.1.20:8470${DEV}`);
    expect(() => decodeInvitationQr(text)).toThrow(/development stack/);
  });

  it('the connector encodes a development invitation in the unchanged CB1 format', () => {
    const apiBase = `http://192.168.1.20:8470${DEV}`;
    const text = encodeInvitationQr({ ...qr, apiBase });
    expect(text.startsWith('CB1:')).toBe(true);
    expect(text).toBe(qrWithApiBase(apiBase));
    const decoded = decodeInvitationQr(text, { allowDevelopmentStack: true });
    expect({ ...decoded, hospitalPublicKey: decoded.hospitalPublicKey.toBase64Url() }).toEqual({
      ...qr,
      apiBase,
      hospitalPublicKey: qr.hospitalPublicKey.toBase64Url(),
    });
    expect(protocolCodeOf(() => encodeInvitationQr({ ...qr, apiBase: 'http://192.168.1.20:8470' }))).toBe(
      INVALID,
    );
  });

  it('canonicalises the marked form (what the stack and the operator name) and tells it apart', () => {
    expect(canonicalApiBase(`http://192.168.1.20:8470${DEV}`)).toBe(`http://192.168.1.20:8470${DEV}`);
    expect(canonicalApiBase(`http://192.168.1.20:8470`)).toBeUndefined();
    expect(isDevelopmentApiBase(`http://192.168.1.20:8470${DEV}`)).toBe(true);
    expect(isDevelopmentApiBase(`http://127.0.0.2:8470${DEV}`)).toBe(true);
    expect(isDevelopmentApiBase('http://127.0.0.1:8470')).toBe(false);
    expect(isDevelopmentApiBase(`http://127.0.0.1:8470${DEV}`)).toBe(false);
    expect(isDevelopmentApiBase('https://api.clinic-bridge.example')).toBe(false);
  });

  it('knows which IPv4 literals are not globally reachable', () => {
    for (const yes of [
      '10.255.255.255',
      '172.16.0.0',
      '172.31.1.1',
      '192.168.0.1',
      '100.127.255.255',
      '169.254.0.1',
      '127.0.0.2',
      '198.19.0.1',
      '203.0.113.9',
      '198.51.100.1',
      '192.0.2.200',
    ]) {
      expect({ yes, ok: isNonGlobalIpv4(yes) }).toEqual({ yes, ok: true });
    }
    for (const no of [
      '8.8.8.8',
      '172.15.255.255',
      '172.32.0.0',
      '100.63.255.255',
      '100.128.0.0',
      '192.0.3.1',
      '198.20.0.1',
      '11.0.0.1',
      '1.1.1.1',
      '192.168.1',
      '192.168.1.256',
      '192.168.01.1',
      '::1',
      'fd00::2',
      'localhost',
      '',
    ]) {
      expect({ no, ok: isNonGlobalIpv4(no) }).toEqual({ no, ok: false });
    }
  });
});
