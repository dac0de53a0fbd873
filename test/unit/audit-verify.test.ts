// cb-admin audit-verify and audit-monitor over a log built in memory (clients/admin/audit-verify.ts):
// every way an operator with write access to Firestore and the bucket (and the log key) could
// change the record is reported with its stable code and the leaf index, and a log whose old
// entries retention pruned behind a five-year-old witnessed checkpoint still verifies.
import { describe, expect, it } from 'vitest';
import { sealAuditEvent, type AuditFields } from '../../shared/audit/fields.ts';
import {
  auditLogKeyName,
  auditLogOrigin,
  cosignatureSigner,
  cosignCheckpoint,
  ed25519Signer,
  encodeEntryBundle,
  entriesPath,
  leafHash,
  rootFromLeafHashes,
  signCheckpoint,
  TILE_WIDTH,
  tilePath,
  tilesFromLeafHashes,
  witnessKeyName,
  type NoteSigner,
} from '../../shared/core/tlog/index.ts';
import {
  monitorLog,
  parseLogKey,
  parseWitnessKey,
  UnreadableEntries,
  verifyLog,
  type EntryOpening,
  type LogSource,
  type VerifyLogOptions,
} from '../../clients/admin/audit-verify.ts';

const API = 'https://api.example.test';
const HOSPITAL = 'h-verify';
const ORIGIN = auditLogOrigin(API, HOSPITAL);
const NOW = new Date('2040-01-01T00:00:00Z');
const NOW_SECONDS = NOW.getTime() / 1000;
const YEAR_SECONDS = 365 * 24 * 3600;

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const logSigner = ed25519Signer(auditLogKeyName(API), seed(1));
const logKey = parseLogKey(logSigner.verifierKey);
const witnessAt = (seconds: number) => cosignatureSigner(witnessKeyName(HOSPITAL), seed(2), () => seconds);
const witness = parseWitnessKey(Buffer.from(witnessAt(0).publicKey).toString('base64url'), HOSPITAL);

function fields(i: number, extra: Partial<AuditFields> = {}): AuditFields {
  return {
    at: new Date(Date.UTC(2035, 0, 1, 0, 0, i)).toISOString().replace('.000Z', 'Z'),
    actor: { kind: 'device', id: `device-${i}` },
    action: 'record.downloaded',
    hospitalId: HOSPITAL,
    ...extra,
  };
}

/** The events of a log, each with its own salt. */
function events(count: number): EntryOpening[] {
  return Array.from({ length: count }, (_, i) => {
    const sealed = sealAuditEvent(fields(i), new Uint8Array(32).fill(i % 251));
    return { id: `e${i}`, index: i, event: sealed.event, salt: sealed.salt };
  });
}

interface MemoryLog {
  readonly entries: EntryOpening[];
  readonly objects: Map<string, Uint8Array>;
  note: string | undefined;
  readonly staged: Map<number, string[]>;
  readonly size: number;
  readonly rootHash: Uint8Array;
}

/** The bucket a sequencer would have written for these entries, in their order, and its checkpoint. */
async function buildLog(entries: EntryOpening[], signer: NoteSigner = logSigner): Promise<MemoryLog> {
  const leaves = entries.map((entry) => sealAuditEvent(JSON.parse(entry.event), entry.salt).leaf);
  const objects = new Map<string, Uint8Array>();
  for (const tile of tilesFromLeafHashes(leaves.map(leafHash))) {
    objects.set(tilePath(tile), tile.data);
    if (tile.level === 0) {
      const from = tile.index * TILE_WIDTH;
      objects.set(
        entriesPath(tile.index, tile.width),
        encodeEntryBundle(leaves.slice(from, from + tile.width)),
      );
    }
  }
  const rootHash = rootFromLeafHashes(leaves.map(leafHash));
  const note = await signCheckpoint({ origin: ORIGIN, size: leaves.length, rootHash, extensions: [] }, [
    signer,
  ]);
  return { entries: [...entries], objects, note, staged: new Map(), size: leaves.length, rootHash };
}

function sourceOf(log: MemoryLog): LogSource {
  return {
    checkpoint: async () => log.note,
    tile: async (coord) => log.objects.get(tilePath(coord)),
    entryBundle: async (index, width) => log.objects.get(entriesPath(index, width)),
    entries: async (from, limit) =>
      log.entries
        .filter((entry) => entry.index !== undefined && entry.index >= from && entry.index < from + limit)
        .sort((a, b) => a.index! - b.index!)
        .slice(0, 1000),
    staged: async (size) => log.staged.get(size),
  };
}

async function cosigned(log: MemoryLog, atSeconds: number): Promise<string> {
  return cosignCheckpoint(log.note!, [witnessAt(atSeconds)]);
}

function options(extra: Partial<VerifyLogOptions> = {}): VerifyLogOptions {
  return { logId: HOSPITAL, origin: ORIGIN, logKey, expectCheckpoint: true, witness, now: NOW, ...extra };
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

// 300 leaves: a full level-0 tile, a partial one of 44, and a level-1 tile over the full one.
const SIZE = 300;

describe('audit-verify (the operator, full check)', () => {
  it('passes an intact log, with the witness cosigned checkpoint consistent', async () => {
    const log = await buildLog(events(SIZE));
    const witnessed = await cosigned(log, NOW_SECONDS - 60);
    expect(await verifyLog(sourceOf(log), options({ witnessed }))).toEqual({
      ok: true,
      size: SIZE,
      entriesChecked: SIZE,
      pruned: 0,
      inFlight: 0,
      witnessedSize: SIZE,
    });
  });

  it('reports an edited entry as ENTRY_MISMATCH at its index', async () => {
    const log = await buildLog(events(SIZE));
    const edited = sealAuditEvent(fields(7, { action: 'record.acknowledged' }), log.entries[7]!.salt);
    log.entries[7] = { ...log.entries[7]!, event: edited.event };
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'ENTRY_MISMATCH',
      index: 7,
    });
  });

  it('reports a deleted entry that retention could not have pruned as ENTRY_DELETED', async () => {
    const log = await buildLog(events(SIZE));
    log.entries.splice(42, 1);
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'ENTRY_DELETED',
      index: 42,
    });
  });

  it('reports reordered entries as ENTRY_MISMATCH at the first of them', async () => {
    const log = await buildLog(events(SIZE));
    log.entries[260] = { ...log.entries[260]!, index: 261 };
    log.entries[261] = { ...log.entries[261]!, index: 260 };
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'ENTRY_MISMATCH',
      index: 260,
    });
  });

  it('reports an inserted entry: a second claim on an index, or one beyond the tree no batch explains', async () => {
    const log = await buildLog(events(SIZE));
    const extra = sealAuditEvent(fields(1000));
    log.entries.push({ id: 'inserted', index: 5, event: extra.event, salt: extra.salt });
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'ENTRY_DUPLICATED',
      index: 5,
    });

    log.entries.pop();
    log.entries.push({ id: 'inserted', index: SIZE, event: extra.event, salt: extra.salt });
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'ENTRY_BEYOND_SIZE',
      index: SIZE,
    });
    // The same entry staged by a sequencer whose checkpoint is not written yet is in flight.
    log.staged.set(SIZE, ['inserted']);
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({ ok: true, inFlight: 1 });
  });

  it('reports a tree rewritten and re-signed with the log key as inconsistent with what the witness cosigned', async () => {
    const original = await buildLog(events(SIZE));
    const witnessed = await cosigned(original, NOW_SECONDS - 60);
    const rewritten = events(SIZE);
    const extra = sealAuditEvent(fields(1000));
    rewritten.splice(100, 0, { id: 'inserted', index: 100, event: extra.event, salt: extra.salt });
    const forged = await buildLog(rewritten.map((entry, i) => ({ ...entry, index: i })));
    // Entries, tiles and checkpoint agree with each other: only the witness's checkpoint catches it.
    expect(await verifyLog(sourceOf(forged), options())).toMatchObject({ ok: true, size: SIZE + 1 });
    expect(await verifyLog(sourceOf(forged), options({ witnessed }))).toMatchObject({
      ok: false,
      code: 'WITNESS_INCONSISTENT',
    });
  });

  it('reports a flipped byte in a tile or bundle as TILE_MISMATCH at the leaf it covers, and a missing tile', async () => {
    const log = await buildLog(events(SIZE));
    const level0 = tilePath({ level: 0, index: 0, width: TILE_WIDTH });
    const intact = log.objects.get(level0)!;
    log.objects.set(level0, flip(intact, 32 * 9 + 3));
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'TILE_MISMATCH',
      index: 9,
    });
    log.objects.set(level0, intact);

    const level1 = tilePath({ level: 1, index: 0, width: 1 });
    log.objects.set(level1, flip(log.objects.get(level1)!, 0));
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'TILE_MISMATCH',
      index: 0,
    });
    log.objects.delete(level1);
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'TILE_MISSING',
      index: 0,
    });

    const fresh = await buildLog(events(SIZE));
    const bundle = entriesPath(1, SIZE - TILE_WIDTH);
    // Leaf 3 of bundle 1 (2 length bytes + 32 per leaf before it).
    fresh.objects.set(bundle, flip(fresh.objects.get(bundle)!, 3 * 34 + 2 + 5));
    expect(await verifyLog(sourceOf(fresh), options())).toMatchObject({
      ok: false,
      code: 'TILE_MISMATCH',
      index: TILE_WIDTH + 3,
    });
  });

  it('reports a checkpoint of another key or another root', async () => {
    const log = await buildLog(events(SIZE));
    const other = await buildLog(events(SIZE), ed25519Signer(auditLogKeyName(API), seed(9)));
    log.note = other.note;
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'CHECKPOINT_SIGNATURE_INVALID',
    });
    log.note = await signCheckpoint(
      { origin: ORIGIN, size: SIZE, rootHash: new Uint8Array(32), extensions: [] },
      [logSigner],
    );
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({ ok: false, code: 'ROOT_MISMATCH' });
    log.note = undefined;
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'CHECKPOINT_MISSING',
    });
  });

  it('passes entries pruned below a checkpoint the witness cosigned over five years ago, and no others', async () => {
    const early = await buildLog(events(100));
    const anchor = await cosigned(early, NOW_SECONDS - 6 * YEAR_SECONDS);
    const log = await buildLog(events(SIZE));
    log.entries.splice(0, 100);
    expect(await verifyLog(sourceOf(log), options({ pruneAnchor: anchor }))).toMatchObject({
      ok: true,
      entriesChecked: SIZE - 100,
      pruned: 100,
    });
    // One entry gone above the anchor is a deletion.
    log.entries.splice(0, 1);
    expect(await verifyLog(sourceOf(log), options({ pruneAnchor: anchor }))).toMatchObject({
      ok: false,
      code: 'ENTRY_DELETED',
      index: 100,
    });
    // An anchor cosigned four years ago allows no pruning at all.
    const recent = await cosigned(early, NOW_SECONDS - 4 * YEAR_SECONDS);
    expect(await verifyLog(sourceOf(log), options({ pruneAnchor: recent }))).toMatchObject({
      ok: false,
      code: 'ENTRY_DELETED',
      index: 0,
    });
    // A forged anchor (not cosigned by the witness) allows none either.
    const forged = await cosignCheckpoint(early.note!, [
      cosignatureSigner(witnessKeyName(HOSPITAL), seed(7), () => NOW_SECONDS - 6 * YEAR_SECONDS),
    ]);
    expect(await verifyLog(sourceOf(log), options({ pruneAnchor: forged }))).toMatchObject({
      ok: false,
      code: 'WITNESS_SIGNATURE_INVALID',
    });
  });

  it('reports an entry whose event is not canonical, and narrows an unreadable document down to its index', async () => {
    const log = await buildLog(events(SIZE));
    log.entries[12] = { ...log.entries[12]!, event: ` ${log.entries[12]!.event}` };
    expect(await verifyLog(sourceOf(log), options())).toMatchObject({
      ok: false,
      code: 'ENTRY_NOT_CANONICAL',
      index: 12,
    });

    const clean = await buildLog(events(SIZE));
    const source = sourceOf(clean);
    const read = source.entries;
    source.entries = async (from, limit) => {
      if (from <= 77 && 77 < from + limit) throw new UnreadableEntries('malformed document');
      return read(from, limit);
    };
    expect(await verifyLog(source, options())).toMatchObject({
      ok: false,
      code: 'ENTRY_NOT_CANONICAL',
      index: 77,
    });
  });
});

describe('audit-monitor (the outside auditor)', () => {
  const all = events(600);

  it('recomputes every tile on its first run, then only the new ones, and accepts a tree that grew', async () => {
    const first = await buildLog(all.slice(0, 260));
    const run1 = await monitorLog(sourceOf(first), { origin: ORIGIN, logKey });
    expect(run1).toMatchObject({ ok: true, newLeaves: 260 });
    const grown = await buildLog(all);
    const witnessed = await cosigned(grown, NOW_SECONDS);
    const run2 = await monitorLog(sourceOf(grown), {
      origin: ORIGIN,
      logKey,
      witness,
      witnessed,
      ...(run1.ok ? { state: run1.state } : {}),
    });
    expect(run2).toMatchObject({ ok: true, newLeaves: 340, witnessedSize: 600 });
    // A flipped byte among the new tiles is found; the monitor never reads an entry document.
    const level0 = tilePath({ level: 0, index: 1, width: TILE_WIDTH });
    grown.objects.set(level0, flip(grown.objects.get(level0)!, 32 * 10));
    expect(
      await monitorLog(sourceOf(grown), {
        origin: ORIGIN,
        logKey,
        ...(run1.ok ? { state: run1.state } : {}),
      }),
    ).toMatchObject({
      ok: false,
      code: 'TILE_MISMATCH',
      index: TILE_WIDTH + 10,
    });
  });

  it('reports a rewritten tree re-signed with the log key against the checkpoint it saved', async () => {
    const saved = await monitorLog(sourceOf(await buildLog(all.slice(0, 300))), { origin: ORIGIN, logKey });
    const rewritten = all.slice(0, 400).map((entry) => ({ ...entry }));
    [rewritten[20], rewritten[21]] = [rewritten[21]!, rewritten[20]!];
    const forged = await buildLog(rewritten.map((entry, i) => ({ ...entry, index: i })));
    expect(
      await monitorLog(sourceOf(forged), {
        origin: ORIGIN,
        logKey,
        ...(saved.ok ? { state: saved.state } : {}),
      }),
    ).toMatchObject({ ok: false, code: 'STATE_INCONSISTENT', index: 300 });
    // And a log that shrank is a rollback.
    const shrunk = await buildLog(all.slice(0, 200));
    expect(
      await monitorLog(sourceOf(shrunk), {
        origin: ORIGIN,
        logKey,
        ...(saved.ok ? { state: saved.state } : {}),
      }),
    ).toMatchObject({ ok: false, code: 'CHECKPOINT_ROLLBACK' });
  });

  it('reports SPLIT_VIEW when the witness cosigned another tree than the bucket shows', async () => {
    const shown = await buildLog(all.slice(0, 300));
    const other = all.slice(0, 300).map((entry) => ({ ...entry }));
    other[299] = { ...other[299]!, salt: new Uint8Array(32).fill(0xee) };
    const toWitness = await buildLog(other);
    const witnessed = await cosigned(toWitness, NOW_SECONDS);
    expect(await monitorLog(sourceOf(shown), { origin: ORIGIN, logKey, witness, witnessed })).toMatchObject({
      ok: false,
      code: 'SPLIT_VIEW',
      index: 300,
    });
    // A witnessed tree ahead of the bucket's (the bucket rolled back) is a split view too.
    const ahead = await cosigned(await buildLog(all.slice(0, 350)), NOW_SECONDS);
    expect(
      await monitorLog(sourceOf(shown), { origin: ORIGIN, logKey, witness, witnessed: ahead }),
    ).toMatchObject({
      ok: false,
      code: 'SPLIT_VIEW',
    });
    // A witnessed note the witness did not cosign proves nothing.
    expect(
      await monitorLog(sourceOf(shown), { origin: ORIGIN, logKey, witness, witnessed: shown.note! }),
    ).toMatchObject({ ok: false, code: 'WITNESS_SIGNATURE_INVALID' });
  });
});
