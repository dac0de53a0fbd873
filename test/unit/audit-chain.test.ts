// The audit trail's hash chain and signed checkpoints: every kind of tampering someone with write
// access to the database could try is detected and located — an edit (with or without the hash
// recomputed), a deletion (with or without renumbering), an insertion, a reordering, a cut-off
// tail, a consistent rewrite, a forged checkpoint — and what the chain cannot see is pinned too.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  chainEvents,
  checkpointMessage,
  eventHash,
  verifyAuditTrail,
  type AuditCheckpoint,
  type AuditEvent,
  type AuditFields,
} from '../../shared/audit/chain.ts';
import { equalBytes } from '../../shared/core/bytes.ts';
import { generateKeyPair, sign, verify, type KeyPair } from '../../shared/core/crypto/index.ts';

let signer: KeyPair;

beforeAll(async () => {
  signer = generateKeyPair();
});

function fields(n: number): AuditFields {
  return {
    at: `2031-01-01T00:00:${String(n).padStart(2, '0')}Z`,
    actor: { kind: 'system', id: 'ingest' },
    action: 'record.created',
    hospitalId: 'st-audit-zh',
    recordId: 'gIGCg4SFhoeIiYqLjI2Ojw',
  };
}

const trail = () =>
  chainEvents(
    undefined,
    Array.from({ length: 10 }, (_, i) => fields(i + 1)),
  );

function checkpoint(events: readonly AuditEvent[], seq: number, key = signer): AuditCheckpoint {
  const at = '2031-01-02T00:00:00Z';
  const hash = events[seq - 1]!.hash;
  return { seq, hash, at, signature: sign(checkpointMessage(seq, hash, at), key.privateKey) };
}

function verifySignature(message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return equalBytes(verify(signature, signer.publicKey), message);
  } catch {
    return false;
  }
}

function check(events: readonly AuditEvent[], checkpoints: readonly AuditCheckpoint[]) {
  return verifyAuditTrail(events, checkpoints, verifySignature);
}

/** Rechains events from index `from` on, as an attacker who can compute SHA-256 would. */
function rechained(events: readonly AuditEvent[], from: number): AuditEvent[] {
  const out = events.slice(0, from).map((event) => ({ ...event }));
  for (const event of events.slice(from)) {
    const prev = out.at(-1);
    const prevHash = prev ? prev.hash : event.prevHash;
    out.push({ ...event, seq: out.length + 1, prevHash, hash: eventHash(prevHash, event.fields) });
  }
  return out;
}

describe('audit chain', () => {
  it('verifies an intact trail and its checkpoints', () => {
    const events = trail();
    expect(check(events, [checkpoint(events, 5), checkpoint(events, 10)])).toEqual({
      ok: true,
      lastSeq: 10,
      checkpointsVerified: 2,
      firstSeq: 1,
    });
    // Appending continues the same chain.
    const more = chainEvents(events.at(-1), [fields(11)]);
    expect(check([...events, ...more], [checkpoint(events, 10)])).toMatchObject({ ok: true, lastSeq: 11 });
  });

  it('an edited event: EDITED where it is, or BROKEN_LINK just after it if its hash was recomputed', () => {
    const events = trail();
    const edited = events.map((e) =>
      e.seq === 4 ? { ...e, fields: { ...e.fields, action: 'record.deleted' as const } } : e,
    );
    expect(check(edited, [])).toEqual({ ok: false, problem: 'EDITED', seq: 4 });
    const recomputed = edited.map((e) => (e.seq === 4 ? { ...e, hash: eventHash(e.prevHash, e.fields) } : e));
    expect(check(recomputed, [])).toEqual({ ok: false, problem: 'BROKEN_LINK', seq: 5 });
  });

  it('a deleted event: DELETED at the gap, or BROKEN_LINK if the rest was renumbered', () => {
    const events = trail();
    const gap = events.filter((e) => e.seq !== 4);
    expect(check(gap, [])).toEqual({ ok: false, problem: 'DELETED', seq: 4 });
    const renumbered = gap.map((e) => (e.seq > 4 ? { ...e, seq: e.seq - 1 } : e));
    expect(check(renumbered, [])).toEqual({ ok: false, problem: 'BROKEN_LINK', seq: 4 });
  });

  it('an inserted event: INSERTED, with or without renumbering', () => {
    const events = trail();
    const forged = chainEvents(events[2], [{ ...fields(30), action: 'record.downloaded' }])[0]!;
    const duplicate = [...events.slice(0, 4), { ...forged, seq: 4 }, ...events.slice(4)];
    expect(check(duplicate, [])).toEqual({ ok: false, problem: 'INSERTED', seq: 4 });
    const renumbered = [
      ...events.slice(0, 3),
      forged,
      ...events.slice(3).map((e) => ({ ...e, seq: e.seq + 1 })),
    ];
    expect(check(renumbered, [])).toEqual({ ok: false, problem: 'INSERTED', seq: 4 });
  });

  it('reordered events: REORDERED, whether or not their numbers were swapped too', () => {
    const events = trail();
    const swapped = [
      ...events.slice(0, 3),
      { ...events[4]!, seq: 4 },
      { ...events[3]!, seq: 5 },
      ...events.slice(5),
    ];
    expect(check(swapped, [])).toEqual({ ok: false, problem: 'REORDERED', seq: 4 });
    const outOfOrder = [...events.slice(0, 3), events[4]!, events[3]!, ...events.slice(5)];
    expect(check(outOfOrder, [])).toEqual({ ok: false, problem: 'REORDERED', seq: 4 });
  });

  it('a cut-off tail is TRUNCATED where a signed checkpoint says the trail went on', () => {
    const events = trail();
    expect(check(events.slice(0, 8), [checkpoint(events, 5), checkpoint(events, 10)])).toEqual({
      ok: false,
      problem: 'TRUNCATED',
      seq: 9,
    });
    // Past the last checkpoint, a cut is invisible: checkpoints must be frequent.
    expect(check(events.slice(0, 8), [checkpoint(events, 5)])).toMatchObject({ ok: true, lastSeq: 8 });
  });

  it('a consistent rewrite disagrees with the signed checkpoint that covers it', () => {
    const events = trail();
    const rewritten = rechained(
      events.map((e) => (e.seq === 7 ? { ...e, fields: { ...e.fields, outcome: 'STORED' } } : e)),
      6,
    );
    expect(check(rewritten, [])).toMatchObject({ ok: true }); // the chain alone cannot see it
    expect(check(rewritten, [checkpoint(events, 5), checkpoint(events, 10)])).toEqual({
      ok: false,
      problem: 'CHECKPOINT_MISMATCH',
      seq: 6,
    });
  });

  it('a prefix pruned after its retention verifies from its signed anchor; pruned early, it is DELETED', () => {
    const events = trail();
    const anchor = checkpoint(events, 4); // signed 2031-01-02
    const later = { now: new Date('2036-02-01T00:00:00Z') }; // more than five years on
    expect(
      verifyAuditTrail(events.slice(4), [anchor, checkpoint(events, 10)], verifySignature, later),
    ).toEqual({
      ok: true,
      lastSeq: 10,
      checkpointsVerified: 2,
      firstSeq: 5,
    });
    // The same cut before five years have passed, without an anchor, or at an unanchored point.
    const early = { now: new Date('2032-01-01T00:00:00Z') };
    expect(verifyAuditTrail(events.slice(4), [anchor], verifySignature, early)).toMatchObject({
      ok: false,
      problem: 'DELETED',
      seq: 1,
    });
    expect(verifyAuditTrail(events.slice(4), [], verifySignature, later)).toMatchObject({
      ok: false,
      problem: 'DELETED',
      seq: 1,
    });
    expect(verifyAuditTrail(events.slice(5), [anchor], verifySignature, later)).toMatchObject({
      ok: false,
      problem: 'DELETED',
      seq: 1,
    });
    // Everything pruned: the newest checkpoint is the anchor, if it is old enough.
    expect(verifyAuditTrail([], [checkpoint(events, 10)], verifySignature, later)).toMatchObject({
      ok: true,
      lastSeq: 10,
      firstSeq: 11,
    });
    expect(verifyAuditTrail([], [checkpoint(events, 10)], verifySignature, early)).toMatchObject({
      ok: false,
      problem: 'TRUNCATED',
    });
    // An anchor forged by someone without the key does not make a deletion legitimate.
    const forged = checkpoint(events, 4, generateKeyPair());
    expect(verifyAuditTrail(events.slice(4), [forged], verifySignature, later)).toMatchObject({
      ok: false,
      problem: 'DELETED',
    });
  });

  it('a checkpoint not signed by the audit key is CHECKPOINT_INVALID', () => {
    const events = trail();
    const rewritten = rechained(events.slice(0, 9), 3);
    const forged = checkpoint(rewritten, 9, generateKeyPair());
    expect(check(rewritten, [forged])).toEqual({ ok: false, problem: 'CHECKPOINT_INVALID', seq: 9 });
    const moved = { ...checkpoint(events, 5), seq: 6 };
    expect(check(events, [moved])).toEqual({ ok: false, problem: 'CHECKPOINT_INVALID', seq: 6 });
  });

  it('refuses event fields that could carry PHI or free text', () => {
    expect(() =>
      eventHash('x', { ...fields(1), note: 'Mr. Jansen, diabetes' } as unknown as AuditFields),
    ).toThrow();
    expect(() => eventHash('x', { ...fields(1), outcome: 'free text' })).toThrow();
  });
});
