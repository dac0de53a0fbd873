// The connector's witness key and the follower logic the witness and the device share
// (clients/lib/audit-log.ts): the seed is HMAC-SHA256(pseudonymKey, "cb/tlog/witness-seed/v1"),
// so it is the same for the same custody and different for another; and a checkpoint is
// accepted only when signed by the pinned log key and consistent with what was accepted before.
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { followCheckpoint, type CheckpointAnswer, type FollowedLog } from '../../clients/lib/audit-log.ts';
import { RefusedError } from '../../clients/lib/cli.ts';
import { WITNESS_SEED_LABEL, witnessSeed, witnessSigner } from '../../clients/connector/witness.ts';
import { memoryHmacKey, toBase64Url, type HmacKey } from '../../shared/core/protocol/index.ts';
import {
  auditLogKeyName,
  auditLogOrigin,
  consistencyProof,
  cosignatureVerifier,
  cosignCheckpoint,
  ed25519PublicKey,
  ed25519Signer,
  leafHash,
  memoryHashReader,
  rootFromLeafHashes,
  signCheckpoint,
  witnessKeyName,
} from '../../shared/core/tlog/index.ts';

const HOSPITAL = 'st-witness-zh';
const API = 'https://api.clinic-bridge.example';

describe('witness seed', () => {
  it('is HMAC-SHA256 of the label under the pseudonym key: deterministic, one per custody key', () => {
    const bytes = new Uint8Array(randomBytes(32));
    const a = witnessSeed(memoryHmacKey(bytes, 1));
    const again = witnessSeed(memoryHmacKey(bytes, 1));
    const other = witnessSeed(memoryHmacKey(new Uint8Array(randomBytes(32)), 1));
    expect(a).toHaveLength(32);
    expect(toBase64Url(again)).toBe(toBase64Url(a));
    expect(toBase64Url(other)).not.toBe(toBase64Url(a));
    const expected = createHmac('sha256', bytes).update(WITNESS_SEED_LABEL, 'utf8').digest();
    expect(toBase64Url(a)).toBe(toBase64Url(new Uint8Array(expected)));
  });

  it('needs only the custody’s HMAC operation (an HSM custody works too)', () => {
    const bytes = new Uint8Array(randomBytes(32));
    const inToken: HmacKey = {
      version: 1,
      hmac: (...parts) => new Uint8Array(createHmac('sha256', bytes).update(Buffer.concat(parts)).digest()),
    };
    const custody = { pseudonymKey: inToken } as never;
    const signer = witnessSigner({ hospitalId: HOSPITAL, custody });
    expect(signer.name).toBe(witnessKeyName(HOSPITAL));
    expect(toBase64Url(signer.publicKey)).toBe(
      toBase64Url(ed25519PublicKey(witnessSeed(memoryHmacKey(bytes, 1)))),
    );
  });
});

describe('following the audit log', () => {
  const logSigner = ed25519Signer(auditLogKeyName(API), new Uint8Array(randomBytes(32)));
  const origin = auditLogOrigin(API, HOSPITAL);
  const leaves = Array.from({ length: 9 }, (_, i) => leafHash(new Uint8Array([i])));
  const read = memoryHashReader(leaves);
  const checkpointAt = (size: number, hashes = leaves) =>
    signCheckpoint({ origin, size, rootHash: rootFromLeafHashes(hashes.slice(0, size)), extensions: [] }, [
      logSigner,
    ]);
  const proof = (from: number, to: number) =>
    from === 0 || from >= to ? [] : consistencyProof(from, to, read).map((hash) => toBase64Url(hash));
  const follow = (saved: FollowedLog | undefined, answer: CheckpointAnswer, witnesses = [] as never[]) =>
    followCheckpoint({ prefix: 'LOG', apiBase: API, hospitalId: HOSPITAL, witnesses, saved, answer });
  const codeOf = (run: () => unknown): string | undefined => {
    try {
      run();
      return undefined;
    } catch (error) {
      if (error instanceof RefusedError) return error.code;
      throw error;
    }
  };

  it('pins the log key, extends by a consistency proof, and refuses rollback, forks and other keys', async () => {
    const logKey = logSigner.verifierKey;
    expect(follow(undefined, { consistencyProof: [] })).toBeUndefined();
    const first = follow(undefined, { logKey, checkpoint: await checkpointAt(4), consistencyProof: [] })!;
    expect(first.state).toMatchObject({ logKey, size: 4 });
    const next = follow(first.state, {
      logKey,
      checkpoint: await checkpointAt(9),
      consistencyProof: proof(4, 9),
    })!;
    expect(next.state.size).toBe(9);

    // A rewritten leaf 2: the new tree does not extend the old one.
    const forked = leaves.map((hash, i) => (i === 2 ? leafHash(new Uint8Array([99])) : hash));
    const forkedRead = memoryHashReader(forked);
    expect(
      codeOf(() =>
        follow(first.state, {
          logKey,
          checkpoint: undefined,
          consistencyProof: [],
        }),
      ),
    ).toBe('LOG_ROLLBACK');
    const forkNote = await checkpointAt(9, forked);
    expect(
      codeOf(() =>
        follow(first.state, {
          logKey,
          checkpoint: forkNote,
          consistencyProof: consistencyProof(4, 9, forkedRead).map((hash) => toBase64Url(hash)),
        }),
      ),
    ).toBe('LOG_INCONSISTENT');
    const smaller = await checkpointAt(3);
    expect(codeOf(() => follow(next.state, { logKey, checkpoint: smaller, consistencyProof: [] }))).toBe(
      'LOG_ROLLBACK',
    );
    const other = ed25519Signer(auditLogKeyName(API), new Uint8Array(randomBytes(32)));
    expect(
      codeOf(() =>
        follow(first.state, { logKey: other.verifierKey, checkpoint: forkNote, consistencyProof: [] }),
      ),
    ).toBe('LOG_KEY_CHANGED');
    const otherNote = await signCheckpoint(
      { origin, size: 9, rootHash: rootFromLeafHashes(leaves), extensions: [] },
      [other],
    );
    expect(codeOf(() => follow(undefined, { logKey, checkpoint: otherNote, consistencyProof: [] }))).toBe(
      'LOG_SIGNATURE_INVALID',
    );
  });

  it('a device requires its witness’s cosignature', async () => {
    const logKey = logSigner.verifierKey;
    const witness = witnessSigner({
      hospitalId: HOSPITAL,
      custody: { pseudonymKey: memoryHmacKey(new Uint8Array(randomBytes(32)), 1) } as never,
    });
    const verifier = cosignatureVerifier(witnessKeyName(HOSPITAL), witness.publicKey);
    const note = await checkpointAt(5);
    const device = (checkpoint: string) =>
      followCheckpoint({
        prefix: 'AUDIT_LOG',
        apiBase: API,
        hospitalId: HOSPITAL,
        witnesses: [verifier],
        saved: undefined,
        answer: { logKey, checkpoint, consistencyProof: [] },
      });
    expect(codeOf(() => device(note))).toBe('AUDIT_LOG_UNWITNESSED');
    expect(device(await cosignCheckpoint(note, [witness]))!.state.size).toBe(5);
  });
});
