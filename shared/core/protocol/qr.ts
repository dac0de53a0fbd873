// The invitation QR payload: "CB1:" followed by base64url (no padding) of
//   api base length    1  uint8, 8..120
//   api base           n  ASCII URL: https://host[:port][/path], or http://127.0.0.1[:port][/path],
//                         or a development stack's http://<private IPv4>[:port]/development-stack
//   hospital id length 1  uint8, 3..40
//   hospital id        h  ASCII, ^[a-z0-9][a-z0-9-]{2,39}$
//   invitation id     16  raw bytes (its base64url text is the invitationId)
//   token             32  raw bytes, one-time
//   binding secret    32  raw bytes
//   hospital key      45  Themis EC P-256 public key
//   witness key       32  the hospital witness's Ed25519 public key (cosigns the audit log;
//                         the device requires its cosignature on every checkpoint it accepts)
// and nothing after. 159 + n + h bytes, at most 319, so the text is at most 430 characters
// (QR byte mode, version 16 at error correction level M).
//
// The decoder is strict: the exact prefix, canonical base64url, every length in range, the URL
// in canonical form, a key Themis accepts, no trailing bytes. Errors are QR_VERSION_UNSUPPORTED
// (another "CB<n>:" prefix), QR_API_BASE_INVALID and QR_MALFORMED (everything else).
//
// A development stack (`npm start -- --host 0.0.0.0`, docs/SANDBOX.md) serves a phone on the local
// network over plain http. Its apiBase says so itself: an IPv4 literal that is not globally
// reachable and the path /development-stack. The format is unchanged (decoders before this one
// refuse such an apiBase as they refuse any http but 127.0.0.1, which is the safe answer), and
// decodeInvitationQr accepts it only when the device was built to: `allowDevelopmentStack` comes
// from the device's own build, never from the QR code, so no invitation can grant it to itself.
import { importPublicKey } from '../crypto/index.ts';
import type { PublicKey } from '../crypto/index.ts';
import { concatBytes, fromBase64Url, toBase64Url } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import { hospitalIdSchema, invitationIdSchema, tokenSchema } from './ids.ts';

export const QR_PREFIX = 'CB1:';
export const QR_MAX_LENGTH = 430;
const MIN_API_BASE = 8;
const MAX_API_BASE = 120;
/** An Ed25519 public key (shared/core/tlog's ED25519_PUBLIC_KEY_SIZE). */
const WITNESS_KEY_BYTES = 32;
const FIXED_BYTES = 16 + 32 + 32 + 45 + WITNESS_KEY_BYTES;

/** The path that marks a development stack's apiBase (docs/SANDBOX.md). */
export const DEVELOPMENT_STACK_PATH = '/development-stack';

/** What a device accepts beyond the production rules. */
export interface InvitationQrRules {
  /**
   * Accept a development stack's invitation: plain http to a private IPv4 address, apiBase path
   * /development-stack. Only a development build sets this, from its build configuration (never
   * from anything scanned, downloaded or typed by the patient). Default false: production rules,
   * where http is allowed to 127.0.0.1 only.
   */
  readonly allowDevelopmentStack?: boolean;
}

/**
 * IPv4 blocks that IANA's special-purpose registry lists as not globally reachable: loopback,
 * RFC 1918, shared (CGNAT, e.g. Tailscale), link-local, benchmarking and documentation. Plain
 * http is allowed to no other address (a development stack is never on the internet), and only
 * to an IP literal, so no name server decides where a phone's requests go.
 */
const NON_GLOBAL_IPV4: readonly (readonly [string, number])[] = [
  ['127.0.0.0', 8],
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['198.18.0.0', 15],
  ['192.0.2.0', 24],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
];

/** A dotted-quad IPv4 literal in canonical form (no leading zeros) as a number, else undefined. */
function ipv4Value(host: string): number | undefined {
  const octets = host.split('.');
  if (octets.length !== 4 || octets.some((octet) => !/^(0|[1-9]\d{0,2})$/.test(octet) || Number(octet) > 255))
    return undefined;
  return octets.reduce((value, octet) => value * 256 + Number(octet), 0);
}

/** True for a dotted-quad IPv4 literal in a block that is not globally reachable. */
export function isNonGlobalIpv4(host: string): boolean {
  const value = ipv4Value(host);
  if (value === undefined) return false;
  return NON_GLOBAL_IPV4.some(([network, bits]) => {
    const size = 2 ** (32 - bits);
    return Math.floor(value / size) === Math.floor(ipv4Value(network)! / size);
  });
}

/**
 * True if a canonical apiBase is a development stack's (plain http to an address other than
 * 127.0.0.1). Such a base is canonical only in the marked form; a device accepts it only with
 * `allowDevelopmentStack`.
 */
export function isDevelopmentApiBase(apiBase: string): boolean {
  return apiBase.startsWith('http://') && !/^http:\/\/127\.0\.0\.1(?::\d+)?(?:\/|$)/.test(apiBase);
}

export interface InvitationQr {
  /** Where the device sends its pair request and, later, its records API calls. */
  readonly apiBase: string;
  readonly hospitalId: string;
  /** 22-character base64url. */
  readonly invitationId: string;
  /** 32 raw bytes as base64url: the one-time token the pairing function checks. */
  readonly token: string;
  /** 32 bytes: the key of the device's binding proof. Never leaves the device. */
  readonly bindingSecret: Uint8Array;
  /** The hospital's public key: verifies manifests and opens wrapped keys. */
  readonly hospitalPublicKey: PublicKey;
  /**
   * The hospital witness's Ed25519 public key (32 bytes): the device pins it and accepts only
   * audit-log checkpoints that this witness cosigned.
   */
  readonly witnessKey: Uint8Array;
}

/**
 * Canonical form of an API base URL, or undefined if it is not allowed: https with a host name
 * (or http to 127.0.0.1, for the local stack), optional port and path, no user info, query
 * or fragment, no trailing slash, lower-case scheme and host. A development stack's marked form,
 * http://<non-global IPv4>[:port]/development-stack, is canonical too, so that the functions and
 * the operator's tools of that stack can name it; whether a device trusts it is decided by
 * decodeInvitationQr (production devices never do).
 */
export function canonicalApiBase(input: string): string | undefined {
  if (typeof input !== 'string' || input.length > MAX_API_BASE || !/^[\x21-\x7e]+$/.test(input))
    return undefined;
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return undefined;
  }
  if (url.username || url.password || url.search || url.hash || input.includes('?') || input.includes('#')) {
    return undefined;
  }
  if (url.protocol === 'http:') {
    const developmentStack = isNonGlobalIpv4(url.hostname) && url.pathname === DEVELOPMENT_STACK_PATH;
    if (url.hostname !== '127.0.0.1' && !developmentStack) return undefined;
  } else if (url.protocol !== 'https:' || url.hostname === '') {
    return undefined;
  }
  const path = url.pathname === '/' ? '' : url.pathname;
  if (path.endsWith('/') || path.includes('//')) return undefined;
  const canonical = `${url.protocol}//${url.host}${path}`;
  return canonical.length >= MIN_API_BASE && canonical.length <= MAX_API_BASE ? canonical : undefined;
}

/** Encodes the QR payload. Throws QR_API_BASE_INVALID / QR_MALFORMED for unacceptable fields. */
export function encodeInvitationQr(qr: InvitationQr): string {
  const apiBase = canonicalApiBase(qr.apiBase);
  if (apiBase === undefined || apiBase !== qr.apiBase) throw new ProtocolError('QR_API_BASE_INVALID');
  if (!hospitalIdSchema.safeParse(qr.hospitalId).success) throw malformed('hospital id');
  if (!invitationIdSchema.safeParse(qr.invitationId).success) throw malformed('invitation id');
  if (!tokenSchema.safeParse(qr.token).success) throw malformed('token');
  if (!(qr.bindingSecret instanceof Uint8Array) || qr.bindingSecret.length !== 32)
    throw malformed('binding secret');
  if (!(qr.witnessKey instanceof Uint8Array) || qr.witnessKey.length !== WITNESS_KEY_BYTES)
    throw malformed('witness key');
  const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
  const bytes = concatBytes([
    Uint8Array.of(apiBase.length),
    ascii(apiBase),
    Uint8Array.of(qr.hospitalId.length),
    ascii(qr.hospitalId),
    fromBase64Url(qr.invitationId)!,
    fromBase64Url(qr.token)!,
    qr.bindingSecret,
    qr.hospitalPublicKey.toBytes(),
    qr.witnessKey,
  ]);
  return QR_PREFIX + toBase64Url(bytes);
}

/**
 * Decodes and validates a scanned QR payload under the production rules, or with
 * `{ allowDevelopmentStack: true }` (a development build only) also a development stack's.
 */
export function decodeInvitationQr(text: string, rules: InvitationQrRules = {}): InvitationQr {
  if (typeof text !== 'string') throw malformed('not text');
  if (!text.startsWith(QR_PREFIX)) {
    if (/^CB[0-9]+:/.test(text)) throw new ProtocolError('QR_VERSION_UNSUPPORTED');
    throw malformed('prefix');
  }
  if (text.length > QR_MAX_LENGTH) throw malformed('too long');
  const bytes = fromBase64Url(text.slice(QR_PREFIX.length));
  if (bytes === undefined) throw malformed('not base64url');
  let offset = 0;
  const take = (n: number): Uint8Array => {
    if (offset + n > bytes.length) throw malformed('truncated');
    const part = bytes.subarray(offset, offset + n);
    offset += n;
    return part;
  };
  const text8 = (n: number): string => String.fromCharCode(...take(n));
  const apiLength = take(1)[0]!;
  if (apiLength < MIN_API_BASE || apiLength > MAX_API_BASE) throw new ProtocolError('QR_API_BASE_INVALID');
  const apiBase = text8(apiLength);
  if (canonicalApiBase(apiBase) !== apiBase) throw new ProtocolError('QR_API_BASE_INVALID');
  if (isDevelopmentApiBase(apiBase) && rules.allowDevelopmentStack !== true) {
    throw new ProtocolError(
      'QR_API_BASE_INVALID',
      'The QR code is from a development stack (plain http); only a development build accepts it.',
    );
  }
  const hospitalLength = take(1)[0]!;
  if (hospitalLength < 3 || hospitalLength > 40) throw malformed('hospital id length');
  const hospitalId = text8(hospitalLength);
  if (!hospitalIdSchema.safeParse(hospitalId).success) throw malformed('hospital id');
  const invitationId = toBase64Url(take(16));
  const token = toBase64Url(take(32));
  const bindingSecret = take(32).slice();
  const keyBytes = take(45);
  const witnessKey = take(WITNESS_KEY_BYTES).slice();
  if (offset !== bytes.length) throw malformed('trailing bytes');
  let hospitalPublicKey: PublicKey;
  try {
    hospitalPublicKey = importPublicKey(keyBytes.slice());
  } catch (error) {
    throw new ProtocolError('QR_MALFORMED', 'the hospital key is not valid', { cause: error });
  }
  return { apiBase, hospitalId, invitationId, token, bindingSecret, hospitalPublicKey, witnessKey };
}

/** Length of the encoded payload for the given field lengths (for capacity planning). */
export function invitationQrLength(apiBaseLength: number, hospitalIdLength: number): number {
  return QR_PREFIX.length + Math.ceil(((2 + apiBaseLength + hospitalIdLength + FIXED_BYTES) * 4) / 3);
}

function malformed(what: string): ProtocolError {
  return new ProtocolError('QR_MALFORMED', `the QR payload is malformed (${what})`);
}
