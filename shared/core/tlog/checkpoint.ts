// c2sp.org/tlog-checkpoint: the note text of a signed tree head.
//   <origin>\n<tree size, decimal, no leading zeroes>\n<base64 root hash>\n[<extension line>\n]*
// Strictness beyond the spec, on purpose: origin and extension lines may not begin or end with
// whitespace (a trailing space is invisible to an operator and would make two origins that look
// equal compare unequal), and sizes are limited to Number.MAX_SAFE_INTEGER.
import { TlogError } from './errors.ts';
import { HASH_SIZE } from './hash.ts';
import {
  decodeCanonicalBase64,
  encodeBase64,
  formatNote,
  type Note,
  type NoteSigner,
  type NoteVerifier,
  parseNote,
  signNote,
  type VerifiedSignature,
  verifyNote,
} from './note.ts';

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly extensions: readonly string[];
}

function malformed(message: string): TlogError {
  return new TlogError('CHECKPOINT_MALFORMED', message);
}

function checkLine(kind: string, line: string): void {
  if (line.length === 0) throw malformed(`${kind} is empty`);
  if (/^\s|\s$/u.test(line)) throw malformed(`${kind} begins or ends with whitespace`);
  if (line.includes('\n') || !line.isWellFormed() || [...line].some((c) => c < ' ')) {
    throw malformed(`${kind} contains a control character`);
  }
}

/** The note text (with its final newline) of a checkpoint. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  checkLine('origin', checkpoint.origin);
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0) throw malformed('invalid tree size');
  if (checkpoint.rootHash.length !== HASH_SIZE) throw malformed('the root hash is not 32 bytes');
  for (const line of checkpoint.extensions) checkLine('extension line', line);
  const lines = [checkpoint.origin, String(checkpoint.size), encodeBase64(checkpoint.rootHash)];
  return `${[...lines, ...checkpoint.extensions].join('\n')}\n`;
}

export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw malformed('checkpoint text does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw malformed('a checkpoint has at least three lines');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  checkLine('origin', origin);
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw malformed('tree size is not canonical decimal');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw malformed('tree size is too large');
  const rootHash = decodeCanonicalBase64(rootText);
  if (rootHash === undefined || rootHash.length !== HASH_SIZE) {
    throw malformed('root hash is not canonical base64 of 32 bytes');
  }
  for (const line of extensions) checkLine('extension line', line);
  return { origin, size, rootHash, extensions };
}

/** A signed checkpoint note, serialised. */
export async function signCheckpoint(
  checkpoint: Checkpoint,
  signers: readonly NoteSigner[],
): Promise<string> {
  return formatNote(await signNote(formatCheckpoint(checkpoint), signers));
}

/** Adds cosignature lines to an already signed checkpoint note, keeping its existing lines. */
export async function cosignCheckpoint(
  note: string | Uint8Array,
  cosigners: readonly NoteSigner[],
): Promise<string> {
  const parsed = parseNote(note);
  parseCheckpoint(parsed.text);
  return formatNote(await signNote(parsed.text, cosigners, parsed.signatures));
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: Note;
  readonly verified: readonly VerifiedSignature[];
}

/**
 * Parses and verifies a checkpoint note: signatures first (signed-note says the text must be
 * ignored until a trusted key has signed it), then the checkpoint text, then the origin, which
 * must be the log the caller meant (a valid checkpoint of another log proves nothing here).
 */
export function openCheckpoint(
  input: string | Uint8Array,
  options: { readonly origin: string; readonly verifiers: readonly NoteVerifier[] },
): OpenedCheckpoint {
  const note = parseNote(input);
  const verified = verifyNote(note, options.verifiers);
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== options.origin) {
    throw new TlogError('CHECKPOINT_ORIGIN_MISMATCH', 'the checkpoint is for another log');
  }
  return { checkpoint, note, verified };
}
