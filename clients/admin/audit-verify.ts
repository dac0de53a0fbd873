// Checking the audit transparency logs (docs/ARCHITECTURE.md, "The audit transparency log") the
// way someone who does not trust the platform checks them. Two views, over readers the caller
// supplies (the bucket and Firestore in cb-admin, maps in the unit tests):
//
// - verifyLog, the operator's full check: the checkpoint's signature, EVERY tile recomputed from
//   the entry bundles up to the checkpoint's root, every entry document's opening against its
//   leaf (no index missing, doubled or beyond the tree), and the hospital witness's newest
//   cosigned checkpoint consistent with the tree. Entries below a checkpoint the witness cosigned
//   more than five years ago may be gone (retention pruned them); any other gap is a deletion.
// - monitorLog, an outside auditor's check with read access to the log's bucket only: the newest
//   checkpoint against the log key the auditor pinned, every tile that is new since the auditor's
//   last run recomputed from the bundles, consistency with that run's tree, and a witnessed
//   checkpoint the auditor obtained elsewhere compared for a split view. It never sees events.
//
// Each verdict names the first problem with a stable code and, where there is one, the leaf index.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { logIdOf, MIN_AUDIT_RETENTION_DAYS, openAuditEvent } from '../../shared/audit/fields.ts';
import {
  auditLeafData,
  auditLogOrigin,
  consistencyProof,
  cosignatureVerifier,
  decodeEntryBundle,
  ed25519VerifierFromKey,
  hashesEqual,
  HASH_SIZE,
  leafHash,
  newTilesBetween,
  openCheckpoint,
  parseVerifierKey,
  rootFromLeafHashes,
  SIGNATURE_TYPE_COSIGNATURE_V1,
  TILE_WIDTH,
  withFetchedTiles,
  tilePath,
  TlogError,
  treeHash,
  verifyConsistency,
  witnessKeyName,
  type Checkpoint,
  type CosignatureVerifier,
  type HashReader,
  type NoteVerifier,
  type TileCoord,
  type TrustedCheckpoint,
} from '../../shared/core/tlog/index.ts';
import { fromBase64Url, toBase64Url } from '../../shared/core/protocol/encoding.ts';
import { canonicalApiBase } from '../../shared/core/protocol/index.ts';
import { UsageError } from '../lib/cli.ts';

export type AuditProblemCode =
  /** The registry knows the log (it has a key) but its bucket has no checkpoint. */
  | 'CHECKPOINT_MISSING'
  /** No log key to check the checkpoint with (none pinned, none in the registry). */
  | 'LOG_KEY_UNKNOWN'
  /** The checkpoint is not signed by the log key, or is not a well-formed checkpoint. */
  | 'CHECKPOINT_SIGNATURE_INVALID'
  /** A valid checkpoint of another log (another API base or log id). */
  | 'CHECKPOINT_ORIGIN_MISMATCH'
  /** The log shows a smaller tree than the monitor verified before. */
  | 'CHECKPOINT_ROLLBACK'
  /** A tile or entry bundle the tree of this size needs is not in the bucket. */
  | 'TILE_MISSING'
  /** An entry bundle is not a sequence of length-prefixed leaves of the tile's width. */
  | 'BUNDLE_INVALID'
  /** A tile hash does not recompute from the level below (level 0: from the bundle's leaves). */
  | 'TILE_MISMATCH'
  /** The tiles give another root than the checkpoint signs. */
  | 'ROOT_MISMATCH'
  /** An entry document's event and salt do not make the leaf at its index. */
  | 'ENTRY_MISMATCH'
  /** An entry document's event is not the canonical text of valid audit fields. */
  | 'ENTRY_NOT_CANONICAL'
  /** An entry in this log whose event belongs to another log. */
  | 'ENTRY_WRONG_LOG'
  /** A leaf with no entry document, above what retention may have pruned. */
  | 'ENTRY_DELETED'
  /** Two entry documents claim the same index. */
  | 'ENTRY_DUPLICATED'
  /** An entry with an index beyond the checkpoint that no batch in flight accounts for. */
  | 'ENTRY_BEYOND_SIZE'
  /** The witness's cosignature (or the log's signature on the witnessed note) does not verify. */
  | 'WITNESS_SIGNATURE_INVALID'
  /** The checkpoint the witness cosigned is not a prefix of the current tree. */
  | 'WITNESS_INCONSISTENT'
  /** The current tree does not extend the one the monitor verified before. */
  | 'STATE_INCONSISTENT'
  /** The witness was shown one tree and the bucket shows another (monitor). */
  | 'SPLIT_VIEW';

export interface AuditProblem {
  readonly code: AuditProblemCode;
  /** The leaf index the problem is at, where it has one. */
  readonly index?: number;
  readonly message: string;
}

export class AuditProblemFound extends Error {
  readonly problem: AuditProblem;
  constructor(problem: AuditProblem) {
    super(problem.message);
    this.name = 'AuditProblemFound';
    this.problem = problem;
  }
}

function fail(code: AuditProblemCode, message: string, index?: number): never {
  throw new AuditProblemFound({ code, message, ...(index === undefined ? {} : { index }) });
}

/** What the tile checks read: a log's objects in its bucket (undefined: never written). */
export interface TileSource {
  tile(coord: TileCoord): Promise<Uint8Array | undefined>;
  entryBundle(index: number, width: number): Promise<Uint8Array | undefined>;
}

// ---------------------------------------------------------------------------------------------
// Tiles

function storedHashCount(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** level);
}

function hashAt(data: Uint8Array, i: number): Uint8Array {
  return data.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
}

function hashesOf(data: Uint8Array): Uint8Array[] {
  return Array.from({ length: data.length / HASH_SIZE }, (_, i) => hashAt(data, i));
}

async function readTile(source: TileSource, coord: TileCoord): Promise<Uint8Array> {
  const firstLeaf = coord.index * TILE_WIDTH ** (coord.level + 1);
  const data = await source.tile(coord);
  if (data === undefined) fail('TILE_MISSING', `the bucket lacks ${tilePath(coord)}`, firstLeaf);
  if (data.length !== coord.width * HASH_SIZE) {
    fail('TILE_MISMATCH', `${tilePath(coord)} has the wrong length`, firstLeaf);
  }
  return data;
}

/**
 * Recomputes the tiles of a tree of `size` that are new since `fromSize` (all of them from 0):
 * each level-0 tile from its entry bundle's leaves, each hash of level L+1 as the root of the
 * full level-L tile below it. Hashes at positions that already existed at `fromSize` (in a
 * partial tile that grew) are not recomputed: the consistency proof from the tree of `fromSize`
 * covers them. `onLeaves` sees each bundle's leaves once they match their tile, in order.
 * Throws AuditProblemFound.
 */
export async function checkTiles(
  source: TileSource,
  size: number,
  fromSize: number,
  onLeaves?: (firstIndex: number, leaves: readonly Uint8Array[]) => Promise<void>,
): Promise<void> {
  const tiles = newTilesBetween(fromSize, size);
  // The roots of the full tiles of the level below, by their position in this level.
  let roots = new Map<number, Uint8Array>();
  for (let level = 0; ; level++) {
    const atLevel = tiles.filter((tile) => tile.level === level);
    if (atLevel.length === 0) break;
    const above = new Map<number, Uint8Array>();
    const oldCount = storedHashCount(fromSize, level);
    for (const coord of atLevel) {
      const data = await readTile(source, coord);
      const first = coord.index * TILE_WIDTH;
      if (level === 0) {
        const bundle = await source.entryBundle(coord.index, coord.width);
        if (bundle === undefined) {
          fail('TILE_MISSING', `the bucket lacks the entry bundle of ${tilePath(coord)}`, first);
        }
        let leaves: Uint8Array[];
        try {
          leaves = decodeEntryBundle(bundle, coord.width);
        } catch (error) {
          if (!(error instanceof TlogError)) throw error;
          fail('BUNDLE_INVALID', `the entry bundle of ${tilePath(coord)}: ${error.message}`, first);
        }
        leaves.forEach((leaf, i) => {
          if (!hashesEqual(leafHash(leaf), hashAt(data, i))) {
            fail('TILE_MISMATCH', `${tilePath(coord)} does not hash its bundle's leaf`, first + i);
          }
        });
        await onLeaves?.(first, leaves);
      } else {
        for (let i = 0; i < coord.width; i++) {
          const position = first + i;
          const expected = roots.get(position);
          if (expected === undefined) {
            if (position >= oldCount) throw new Error(`no root for position ${position} at level ${level}`);
            continue;
          }
          if (!hashesEqual(expected, hashAt(data, i))) {
            fail(
              'TILE_MISMATCH',
              `${tilePath(coord)} hash ${i} is not the root of the tile below`,
              position * TILE_WIDTH ** level,
            );
          }
        }
      }
      if (coord.width === TILE_WIDTH) above.set(coord.index, rootFromLeafHashes(hashesOf(data)));
    }
    roots = above;
  }
}

/** Runs `compute` over the tiles of a tree of `size`, fetching each tile it needs once. */
export function withTiles<T>(source: TileSource, size: number, compute: (read: HashReader) => T): Promise<T> {
  return withFetchedTiles(size, (coord) => readTile(source, coord), compute);
}

async function checkRoot(source: TileSource, checkpoint: Checkpoint): Promise<void> {
  const root = await withTiles(source, checkpoint.size, (read) => treeHash(checkpoint.size, read));
  if (!hashesEqual(root, checkpoint.rootHash)) {
    fail('ROOT_MISMATCH', `the tiles give another root than the checkpoint of size ${checkpoint.size}`);
  }
}

/** True if the tree of `older` is a prefix of `newer`'s, by a proof computed from newer's tiles. */
async function isPrefix(source: TileSource, older: TrustedCheckpoint, newer: Checkpoint): Promise<boolean> {
  if (older.size > newer.size) return false;
  const proof = await withTiles(source, newer.size, (read) => consistencyProof(older.size, newer.size, read));
  return verifyConsistency(older.size, newer.size, older.rootHash, newer.rootHash, proof);
}

// ---------------------------------------------------------------------------------------------
// Keys and checkpoints

/** The log key: a note verifier key `<name>+<id>+<base64>` (as the registry and the sequencer give it). */
export function parseLogKey(text: string): NoteVerifier {
  try {
    return ed25519VerifierFromKey(text.trim());
  } catch {
    throw new TypeError('not an Ed25519 note verifier key (<name>+<id>+<base64>)');
  }
}

/**
 * A hospital witness's key: base64url of its 32-byte Ed25519 public key (as the registry keeps
 * it), or a cosignature/v1 verifier key `<name>+<id>+<base64>`.
 */
export function parseWitnessKey(text: string, logId: string): CosignatureVerifier {
  const trimmed = text.trim();
  if (trimmed.includes('+')) {
    const key = parseVerifierKey(trimmed);
    if (key.type !== SIGNATURE_TYPE_COSIGNATURE_V1) throw new TypeError('not a cosignature/v1 key');
    return cosignatureVerifier(key.name, key.publicKey);
  }
  const publicKey = fromBase64Url(trimmed);
  if (publicKey?.length !== 32) throw new TypeError('not a base64url Ed25519 public key');
  return cosignatureVerifier(witnessKeyName(logId), publicKey);
}

function openSigned(note: string, origin: string, logKey: NoteVerifier): Checkpoint {
  try {
    const opened = openCheckpoint(note, { origin, verifiers: [logKey] });
    return opened.checkpoint;
  } catch (error) {
    if (!(error instanceof TlogError)) throw error;
    if (error.code === 'CHECKPOINT_ORIGIN_MISMATCH') fail('CHECKPOINT_ORIGIN_MISMATCH', error.message);
    fail('CHECKPOINT_SIGNATURE_INVALID', `the checkpoint does not verify with the log key: ${error.message}`);
  }
}

/** A witnessed note: the log's signature and the witness's cosignature; its cosignature time. */
function openWitnessed(
  note: string,
  origin: string,
  logKey: NoteVerifier,
  witness: CosignatureVerifier,
): { checkpoint: Checkpoint; cosignedAt: number } {
  try {
    const opened = openCheckpoint(note, { origin, verifiers: [logKey, witness] });
    const line = opened.verified.find((v) => v.verifier === witness);
    const cosignedAt = line && witness.timestampOf(line.signature.signature);
    if (!opened.verified.some((v) => v.verifier === logKey)) throw new Error('the log did not sign it');
    if (cosignedAt === undefined) throw new Error('the witness did not cosign it');
    return { checkpoint: opened.checkpoint, cosignedAt };
  } catch (error) {
    const message = (error as Error).message;
    fail('WITNESS_SIGNATURE_INVALID', `the witnessed checkpoint does not verify: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Full verification (the operator)

/** One entry document as its store gives it. */
export interface EntryOpening {
  readonly id: string;
  readonly index?: number;
  readonly event: string;
  readonly salt: Uint8Array;
}

/**
 * Thrown by an entry source for entries it cannot read (a malformed document), as opposed to a
 * store that cannot be reached; the verifier then narrows it down to the index.
 */
export class UnreadableEntries extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreadableEntries';
  }
}

export interface LogSource extends TileSource {
  /** The log's checkpoint note, or undefined if it has none. */
  checkpoint(): Promise<string | undefined>;
  /** Sequenced entries with index in [from, from + limit), by index; may return fewer than exist past a page. */
  entries(from: number, limit: number): Promise<readonly EntryOpening[]>;
  /** The ids of the batch a sequencer staged after `size`, if one is in flight. */
  staged(size: number): Promise<readonly string[] | undefined>;
}

export interface VerifyLogOptions {
  readonly logId: string;
  readonly origin: string;
  /** The log key; undefined if none was pinned and the registry has none. */
  readonly logKey: NoteVerifier | undefined;
  /** The registry knows a key for the log, so it must have a checkpoint. */
  readonly expectCheckpoint?: boolean;
  /** The hospital witness's key (from the registry). */
  readonly witness?: CosignatureVerifier;
  /** The newest cosigned checkpoint the registry holds. */
  readonly witnessed?: string;
  /** The newest checkpoint cosigned at least MIN_AUDIT_RETENTION_DAYS before `now` (retention's anchor). */
  readonly pruneAnchor?: string;
  readonly now: Date;
}

export type LogVerdict =
  | {
      readonly ok: true;
      readonly size: number;
      readonly entriesChecked: number;
      readonly pruned: number;
      readonly witnessedSize?: number;
      /** Entries indexed beyond the checkpoint by a batch still in flight. */
      readonly inFlight: number;
    }
  | ({ readonly ok: false } & AuditProblem);

const MAX_INDEX = Number.MAX_SAFE_INTEGER;
const DAY_SECONDS = 24 * 3600;

async function readEntries(source: LogSource, from: number, limit: number): Promise<readonly EntryOpening[]> {
  try {
    return await source.entries(from, limit);
  } catch (error) {
    if (!(error instanceof UnreadableEntries)) throw error;
    if (limit === 1) fail('ENTRY_NOT_CANONICAL', `the entry document is unreadable: ${error.message}`, from);
    // Narrow it down: the first half, then the second.
    const half = Math.ceil(limit / 2);
    return [
      ...(await readEntries(source, from, half)),
      ...(await readEntries(source, from + half, limit - half)),
    ];
  }
}

function checkOpening(logId: string, entry: EntryOpening, leaf: Uint8Array, index: number): void {
  let leafData: Uint8Array;
  try {
    if (logIdOf(openAuditEvent(entry.event)) !== logId) {
      fail('ENTRY_WRONG_LOG', `entry ${entry.id} records an event of another log`, index);
    }
  } catch (error) {
    if (error instanceof AuditProblemFound) throw error;
    fail('ENTRY_NOT_CANONICAL', `entry ${entry.id} is not a canonical audit event`, index);
  }
  try {
    leafData = auditLeafData(entry.salt, entry.event);
  } catch {
    fail('ENTRY_MISMATCH', `entry ${entry.id} has a malformed salt`, index);
  }
  if (!hashesEqual(leafData, leaf)) {
    fail('ENTRY_MISMATCH', `entry ${entry.id} does not open the leaf at its index`, index);
  }
}

/** The whole log against its checkpoint (see the file header). Never throws AuditProblemFound. */
export async function verifyLog(source: LogSource, options: VerifyLogOptions): Promise<LogVerdict> {
  try {
    return await verifyLogOrThrow(source, options);
  } catch (error) {
    if (error instanceof AuditProblemFound) return { ok: false, ...error.problem };
    throw error;
  }
}

async function verifyLogOrThrow(source: LogSource, options: VerifyLogOptions): Promise<LogVerdict> {
  const { logId, origin, logKey, witness } = options;
  const note = await source.checkpoint();
  if (note !== undefined && logKey === undefined) {
    fail('LOG_KEY_UNKNOWN', 'no log key was given and the registry has none for this log');
  }
  if (note === undefined && (options.expectCheckpoint || options.witnessed !== undefined)) {
    fail(
      'CHECKPOINT_MISSING',
      'the log has a key or a witnessed checkpoint but its bucket has no checkpoint',
    );
  }
  const checkpoint: Checkpoint =
    note === undefined
      ? { origin, size: 0, rootHash: new Uint8Array(HASH_SIZE), extensions: [] }
      : openSigned(note, origin, logKey!);
  const { size } = checkpoint;

  // What retention may have pruned: entries below a checkpoint the witness cosigned five years ago.
  let pruneFloor = 0;
  if (options.pruneAnchor !== undefined && witness !== undefined && logKey !== undefined) {
    const anchor = openWitnessed(options.pruneAnchor, origin, logKey, witness);
    const cutoff = options.now.getTime() / 1000 - MIN_AUDIT_RETENTION_DAYS * DAY_SECONDS;
    if (anchor.cosignedAt <= cutoff) {
      if (
        !(await isPrefix(
          source,
          { size: anchor.checkpoint.size, rootHash: anchor.checkpoint.rootHash },
          checkpoint,
        ))
      ) {
        fail(
          'WITNESS_INCONSISTENT',
          'the retention anchor is not a prefix of the tree',
          anchor.checkpoint.size,
        );
      }
      pruneFloor = anchor.checkpoint.size;
    }
  }

  let entriesChecked = 0;
  let pruned = 0;
  await checkTiles(source, size, 0, async (first, leaves) => {
    const found = await readEntries(source, first, leaves.length);
    const byIndex = new Map<number, EntryOpening>();
    for (const entry of found) {
      const index = entry.index;
      if (index === undefined || index < first || index >= first + leaves.length) continue;
      if (byIndex.has(index)) fail('ENTRY_DUPLICATED', `two entries claim index ${index}`, index);
      byIndex.set(index, entry);
    }
    for (let i = 0; i < leaves.length; i++) {
      const index = first + i;
      const entry = byIndex.get(index);
      if (entry === undefined) {
        if (index < pruneFloor) pruned++;
        else fail('ENTRY_DELETED', `no entry opens leaf ${index}`, index);
        continue;
      }
      checkOpening(logId, entry, leaves[i]!, index);
      entriesChecked++;
    }
  });
  if (note !== undefined) await checkRoot(source, checkpoint);

  // Entries past the tree: only a batch in flight (staged, indexes written, checkpoint not yet) has them.
  const inFlight = new Map<number, string>();
  for (let at = size; ;) {
    const ids = await source.staged(at);
    if (ids === undefined || ids.length === 0) break;
    ids.forEach((id, k) => inFlight.set(at + k, id));
    at += ids.length;
  }
  let inFlightCount = 0;
  for (let from = size; from < MAX_INDEX;) {
    const page = await readEntries(source, from, MAX_INDEX - from);
    if (page.length === 0) break;
    for (const entry of page) {
      const index = entry.index ?? from;
      if (inFlight.get(index) !== entry.id) {
        fail(
          'ENTRY_BEYOND_SIZE',
          `entry ${entry.id} claims index ${index} beyond the tree of ${size}`,
          index,
        );
      }
      inFlightCount++;
    }
    from = Math.max(...page.map((entry) => entry.index ?? from)) + 1;
  }

  let witnessedSize: number | undefined;
  if (options.witnessed !== undefined && witness !== undefined && logKey !== undefined) {
    const witnessed = openWitnessed(options.witnessed, origin, logKey, witness).checkpoint;
    witnessedSize = witnessed.size;
    if (!(await isPrefix(source, witnessed, checkpoint))) {
      fail(
        'WITNESS_INCONSISTENT',
        `the checkpoint the witness cosigned (size ${witnessed.size}) is not a prefix of the tree of ${size}`,
        Math.min(witnessed.size, size),
      );
    }
  }
  return {
    ok: true,
    size,
    entriesChecked,
    pruned,
    inFlight: inFlightCount,
    ...(witnessedSize === undefined ? {} : { witnessedSize }),
  };
}

// ---------------------------------------------------------------------------------------------
// Monitoring (the outside auditor)

export interface MonitorSource extends TileSource {
  checkpoint(): Promise<string | undefined>;
}

export interface MonitorOptions {
  readonly origin: string;
  readonly logKey: NoteVerifier;
  readonly witness?: CosignatureVerifier;
  /** A checkpoint the hospital's witness cosigned, as the auditor obtained it (not from the bucket). */
  readonly witnessed?: string;
  /** The tree the monitor verified last time. */
  readonly state?: TrustedCheckpoint;
}

export type MonitorVerdict =
  | {
      readonly ok: true;
      /** The tree now verified: the state to keep for the next run. */
      readonly state: TrustedCheckpoint;
      /** Leaves added since the previous state. */
      readonly newLeaves: number;
      readonly witnessedSize?: number;
    }
  | ({ readonly ok: false } & AuditProblem);

export async function monitorLog(source: MonitorSource, options: MonitorOptions): Promise<MonitorVerdict> {
  try {
    return await monitorOrThrow(source, options);
  } catch (error) {
    if (error instanceof AuditProblemFound) return { ok: false, ...error.problem };
    throw error;
  }
}

async function monitorOrThrow(source: MonitorSource, options: MonitorOptions): Promise<MonitorVerdict> {
  const { origin, logKey, state } = options;
  const note = await source.checkpoint();
  if (note === undefined) {
    if ((state?.size ?? 0) > 0 || options.witnessed !== undefined) {
      fail('CHECKPOINT_MISSING', 'the bucket has no checkpoint for this log');
    }
    return { ok: true, state: { size: 0, rootHash: rootFromLeafHashes([]) }, newLeaves: 0 };
  }
  const checkpoint = openSigned(note, origin, logKey);
  const fromSize = state?.size ?? 0;
  if (checkpoint.size < fromSize) {
    fail('CHECKPOINT_ROLLBACK', `the log shows ${checkpoint.size} leaves; it showed ${fromSize} before`);
  }
  await checkTiles(source, checkpoint.size, fromSize);
  await checkRoot(source, checkpoint);
  if (state !== undefined && !(await isPrefix(source, state, checkpoint))) {
    fail(
      'STATE_INCONSISTENT',
      `the tree of ${checkpoint.size} does not extend the tree of ${state.size} verified before`,
      state.size,
    );
  }
  let witnessedSize: number | undefined;
  if (options.witnessed !== undefined) {
    if (options.witness === undefined) throw new TypeError('a witnessed checkpoint needs the witness key');
    const witnessed = openWitnessed(options.witnessed, origin, logKey, options.witness).checkpoint;
    witnessedSize = witnessed.size;
    // The witness only cosigns what the bucket published: a larger or diverging tree is a fork.
    if (witnessed.size > checkpoint.size || !(await isPrefix(source, witnessed, checkpoint))) {
      fail(
        'SPLIT_VIEW',
        `the witness cosigned a tree of ${witnessed.size} that the bucket's tree of ${checkpoint.size} does not extend`,
        Math.min(witnessed.size, checkpoint.size),
      );
    }
  }
  return {
    ok: true,
    state: { size: checkpoint.size, rootHash: checkpoint.rootHash },
    newLeaves: checkpoint.size - fromSize,
    ...(witnessedSize === undefined ? {} : { witnessedSize }),
  };
}

// ---------------------------------------------------------------------------------------------
// The commands' output and the monitor's state (cb-admin audit-verify / audit-monitor)

/** What `audit-verify` prints for one log, and its exit status: ok or not. */
export function describeLogVerdict(logId: string, verdict: LogVerdict): string {
  if (!verdict.ok) {
    return `${logId}  ${verdict.code}${verdict.index === undefined ? '' : ` at index ${verdict.index}`}: ${verdict.message}`;
  }
  const notes = [
    `size ${verdict.size}`,
    `${verdict.entriesChecked} entr${verdict.entriesChecked === 1 ? 'y' : 'ies'} checked`,
    ...(verdict.pruned > 0 ? [`${verdict.pruned} pruned after their retention`] : []),
    ...(verdict.witnessedSize !== undefined ? [`witnessed at ${verdict.witnessedSize}`] : []),
    ...(verdict.inFlight > 0 ? [`${verdict.inFlight} in a batch still in flight`] : []),
  ];
  return `${logId}  ok  ${notes.join(', ')}`;
}

/** The monitor's memory between runs: the tree it last verified, of one log. */
export interface MonitorState extends TrustedCheckpoint {
  readonly origin: string;
}

export function parseMonitorState(text: string): MonitorState {
  const value = JSON.parse(text) as { origin?: unknown; size?: unknown; rootHash?: unknown };
  const rootHash = typeof value.rootHash === 'string' ? fromBase64Url(value.rootHash) : undefined;
  if (
    typeof value.origin !== 'string' ||
    typeof value.size !== 'number' ||
    !Number.isSafeInteger(value.size) ||
    value.size < 0 ||
    rootHash?.length !== HASH_SIZE
  ) {
    throw new TypeError('not a monitor state file');
  }
  return { origin: value.origin, size: value.size, rootHash };
}

export function formatMonitorState(state: MonitorState): string {
  return `${JSON.stringify({ origin: state.origin, size: state.size, rootHash: toBase64Url(state.rootHash) }, null, 2)}\n`;
}

export function describeMonitorVerdict(
  origin: string,
  verdict: MonitorVerdict,
  previous?: TrustedCheckpoint,
): string {
  if (!verdict.ok) {
    return `${origin}  ${verdict.code}${verdict.index === undefined ? '' : ` at index ${verdict.index}`}: ${verdict.message}`;
  }
  const notes = [
    `size ${verdict.state.size}`,
    previous === undefined
      ? 'first run: every tile recomputed'
      : `${verdict.newLeaves} new since ${previous.size}, consistent`,
    ...(verdict.witnessedSize !== undefined ? [`witnessed at ${verdict.witnessedSize}, no split view`] : []),
  ];
  return `${origin}  ok  ${notes.join(', ')}`;
}

export interface AuditMonitorOptions {
  readonly apiBase: string;
  /** The log: a hospital id (or `platform`). */
  readonly logId: string;
  readonly logKey: string;
  readonly witnessKey?: string;
  /** A file with the witness-cosigned checkpoint note (the hospital's connector keeps it). */
  readonly witnessedFile?: string;
  /** Where the monitor keeps the tree it verified last (read, then replaced when all is well). */
  readonly stateFile?: string;
}

export interface AuditMonitorRun {
  readonly origin: string;
  readonly previous?: MonitorState;
  readonly verdict: MonitorVerdict;
}

/** One monitor run over the log's bucket objects: reads and, when all is well, advances the state file. */
export async function runAuditMonitor(
  source: MonitorSource,
  options: AuditMonitorOptions,
): Promise<AuditMonitorRun> {
  const apiBase = canonicalApiBase(options.apiBase);
  if (apiBase === undefined) throw new UsageError('--api-base must be https://host[:port][/path]');
  const origin = auditLogOrigin(apiBase, options.logId);
  let logKey: NoteVerifier;
  try {
    logKey = parseLogKey(options.logKey);
  } catch {
    throw new UsageError("--log-key must be the log's note verifier key, <name>+<id>+<base64>");
  }
  let witness: CosignatureVerifier | undefined;
  if (options.witnessKey !== undefined) {
    try {
      witness = parseWitnessKey(options.witnessKey, options.logId);
    } catch {
      throw new UsageError('--witness-key must be base64url of the witness Ed25519 key, or its verifier key');
    }
  }
  if (options.witnessedFile !== undefined && witness === undefined) {
    throw new UsageError('--witnessed needs --witness-key (the key whose cosignature it carries)');
  }
  const witnessed = options.witnessedFile === undefined ? undefined : await readText(options.witnessedFile);
  let previous: MonitorState | undefined;
  if (options.stateFile !== undefined) {
    const text = await readText(options.stateFile, true);
    if (text !== undefined) {
      try {
        previous = parseMonitorState(text);
      } catch {
        throw new UsageError(`${options.stateFile} is not a monitor state file`);
      }
      if (previous.origin !== origin) {
        throw new UsageError(`${options.stateFile} is the state of ${previous.origin}, not of ${origin}`);
      }
    }
  }
  const verdict = await monitorLog(source, {
    origin,
    logKey,
    ...(witness ? { witness } : {}),
    ...(witnessed !== undefined ? { witnessed } : {}),
    ...(previous ? { state: previous } : {}),
  });
  if (verdict.ok && options.stateFile !== undefined) {
    const temporary = `${options.stateFile}.tmp`;
    await writeFile(temporary, formatMonitorState({ origin, ...verdict.state }));
    await rename(temporary, options.stateFile);
  }
  return { origin, ...(previous ? { previous } : {}), verdict };
}

async function readText(path: string, missingIsNone = false): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (missingIsNone && (error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read ${path}`);
  }
}
