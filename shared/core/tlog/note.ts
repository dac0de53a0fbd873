// c2sp.org/signed-note: text ending in a newline, a blank line, then one or more lines
// `— <key name> <base64(4-byte key id || signature)>`. Parsing is strict and formatting
// canonical, so the bytes a log signs and the bytes a witness or client verifies are the same
// bytes: there is exactly one accepted spelling of every note.
import { platform } from '#platform';
import { TlogError } from './errors.ts';

const EM_DASH_PREFIX = '\u2014 ';
/** The spec requires accepting at least 16; witness networks add one line per witness. */
export const MAX_NOTE_SIGNATURES = 64;
/** Bounds the work a hostile note can cause (ML-DSA-44 lines are about 3.3 kB each). */
export const MAX_NOTE_BYTES = 1 << 20;
export const KEY_ID_SIZE = 4;

export interface NoteSignature {
  readonly name: string;
  /** The 4-byte key id (big-endian uint32 in the spec). */
  readonly keyId: Uint8Array;
  /** The signature bytes that follow the key id. */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/**
 * A signing key. sign() is asynchronous because the project's keys may live in KMS or an HSM;
 * it receives the exact UTF-8 note text and returns the signature without the key id.
 */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** A trusted public key. verify() must return false (never throw) for a bad signature. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: Uint8Array;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

function malformed(message: string): TlogError {
  return new TlogError('NOTE_MALFORMED', message);
}

/** Non-empty, without Unicode spaces or `+` (the `+` separates fields of a verifier key). */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && name.isWellFormed() && !/[\s+]/u.test(name) && !hasControl(name);
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return true;
  }
  return false;
}

/** Standard base64 with padding, and only the one canonical encoding of the bytes. */
export function decodeCanonicalBase64(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = platform.decodeBase64(text, false);
  return platform.encodeBase64(bytes, false) === text ? bytes : undefined;
}

export function encodeBase64(bytes: Uint8Array): string {
  return platform.encodeBase64(bytes, false);
}

function decodeUtf8(input: string | Uint8Array): string {
  if (typeof input === 'string') {
    if (!input.isWellFormed()) throw malformed('note is not valid Unicode');
    return input;
  }
  try {
    // ignoreBOM keeps a leading U+FEFF as part of the text instead of silently dropping bytes
    // that the signature covers.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
  } catch {
    throw malformed('note is not valid UTF-8');
  }
}

/** Parses a signed note without verifying it; use verifyNote before trusting the text. */
export function parseNote(input: string | Uint8Array): Note {
  const size = typeof input === 'string' ? new TextEncoder().encode(input).length : input.length;
  if (size > MAX_NOTE_BYTES) throw malformed('note is too large');
  const note = decodeUtf8(input);
  // Rejects CR among others, so a CRLF note never parses.
  if (hasControl(note)) throw malformed('note contains a control character other than newline');
  if (!note.endsWith('\n')) throw malformed('note does not end with a newline');
  // The text ends at the LAST blank line; the text itself may contain blank lines.
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw malformed('note has no blank line before its signatures');
  if (note.length === split + 2) throw malformed('note has no signature lines');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw malformed('note has too many signatures');
  const signatures = lines.map(parseSignatureLine);
  return { text, signatures };
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(EM_DASH_PREFIX)) throw malformed('signature line does not start with an em dash');
  const fields = line.slice(EM_DASH_PREFIX.length).split(' ');
  if (fields.length !== 2) throw malformed('signature line is not `— <name> <signature>`');
  const [name, encoded] = fields as [string, string];
  if (!isValidKeyName(name)) throw malformed('signature line has an invalid key name');
  const bytes = decodeCanonicalBase64(encoded);
  if (bytes === undefined || bytes.length <= KEY_ID_SIZE) {
    throw malformed('signature is not canonical base64 of a key id and signature');
  }
  return { name, keyId: bytes.slice(0, KEY_ID_SIZE), signature: bytes.slice(KEY_ID_SIZE) };
}

function checkText(text: string): void {
  if (!text.isWellFormed() || hasControl(text)) throw malformed('note text has invalid characters');
  if (!text.endsWith('\n')) throw malformed('note text must end with a newline');
}

export function formatSignatureLine(signature: NoteSignature): string {
  if (!isValidKeyName(signature.name)) throw malformed('invalid key name');
  if (signature.keyId.length !== KEY_ID_SIZE || signature.signature.length === 0) {
    throw malformed('a signature needs a 4-byte key id and a non-empty signature');
  }
  const bytes = new Uint8Array(KEY_ID_SIZE + signature.signature.length);
  bytes.set(signature.keyId);
  bytes.set(signature.signature, KEY_ID_SIZE);
  return `${EM_DASH_PREFIX}${signature.name} ${encodeBase64(bytes)}\n`;
}

/** The canonical serialisation; parseNote(formatNote(n)) gives n back. */
export function formatNote(note: Note): string {
  checkText(note.text);
  if (note.signatures.length === 0) throw malformed('a signed note needs at least one signature');
  if (note.signatures.length > MAX_NOTE_SIGNATURES) throw malformed('too many signatures');
  return `${note.text}\n${note.signatures.map(formatSignatureLine).join('')}`;
}

/**
 * Signs `text` with every signer and appends the lines to `existing` (a cosigner adds its line
 * to the log's note without touching the others).
 */
export async function signNote(
  text: string,
  signers: readonly NoteSigner[],
  existing: readonly NoteSignature[] = [],
): Promise<Note> {
  checkText(text);
  const message = new TextEncoder().encode(text);
  const added: NoteSignature[] = [];
  for (const signer of signers) {
    if (!isValidKeyName(signer.name) || signer.keyId.length !== KEY_ID_SIZE) {
      throw new TlogError('INVALID_ARGUMENT', 'a signer needs a valid name and a 4-byte key id');
    }
    added.push({ name: signer.name, keyId: signer.keyId, signature: await signer.sign(message) });
  }
  return { text, signatures: [...existing, ...added] };
}

function sameKeyId(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === KEY_ID_SIZE && b.length === KEY_ID_SIZE && a.every((byte, i) => byte === b[i]);
}

export interface VerifiedSignature {
  readonly verifier: NoteVerifier;
  readonly signature: NoteSignature;
}

/**
 * Verifies a parsed note as the spec says: lines whose (name, key id) match no verifier are
 * ignored (a shared name or id alone is not a match); a line from a known key that fails makes
 * the whole note invalid; at least one known key must have signed. Our addition: two lines from
 * the same known key are rejected, since which one (e.g. which cosignature timestamp) counts
 * would be ambiguous.
 */
export function verifyNote(note: Note, verifiers: readonly NoteVerifier[]): VerifiedSignature[] {
  verifiers.forEach((a, i) => {
    if (verifiers.some((b, j) => j > i && a.name === b.name && sameKeyId(a.keyId, b.keyId))) {
      throw new TlogError('INVALID_ARGUMENT', 'two verifiers share a name and key id');
    }
  });
  const message = new TextEncoder().encode(note.text);
  const verified: VerifiedSignature[] = [];
  for (const signature of note.signatures) {
    const verifier = verifiers.find((v) => v.name === signature.name && sameKeyId(v.keyId, signature.keyId));
    if (verifier === undefined) continue;
    if (verified.some((done) => done.verifier === verifier)) {
      throw new TlogError('SIGNATURE_INVALID', `two signatures from ${signature.name}`);
    }
    if (!verifier.verify(message, signature.signature)) {
      throw new TlogError('SIGNATURE_INVALID', `the signature from ${signature.name} does not verify`);
    }
    verified.push({ verifier, signature });
  }
  if (verified.length === 0) throw new TlogError('SIGNATURE_MISSING', 'no signature from a known key');
  return verified;
}
