// Serving the audit transparency logs to those who check them (docs/PROTOCOL.md §16): a phone
// gets its hospital's newest cosigned checkpoint with a consistency proof from the one it kept,
// and inclusion proofs for the entries of its access log; the hospital's witness gets the newest
// platform-signed checkpoint with a consistency proof from the one it last cosigned, and hands
// its cosignature back. Nothing here is trusted by its readers: every answer is a proof they
// check, so this service needs no key, only the log's bucket and registry.
import {
  auditLogOrigin,
  cosignatureVerifier,
  openCheckpoint,
  ed25519VerifierFromKey,
  hashesEqual,
  witnessKeyName,
  TlogError,
} from '../core/tlog/index.ts';
import { fromBase64Url, toBase64Url } from '../core/protocol/encoding.ts';
import { ProtocolError } from '../core/protocol/error-codes.ts';
import type { Clock } from '../ports/clock.ts';
import type { LogRegistry, LogState } from '../ports/log-registry.ts';
import type { LogObjects } from '../ports/log-objects.ts';
import { logProofs } from './log-reader.ts';

export interface TransparencyOptions {
  readonly objects: LogObjects;
  readonly registry: LogRegistry;
  readonly apiBase: string;
  readonly clock: Clock;
}

export interface CheckpointAnswer {
  readonly logKey?: string;
  readonly checkpoint?: string;
  readonly consistencyProof: string[];
}

export interface Transparency {
  /** The newest cosigned checkpoint of `logId`, proven consistent with `fromSize` (phones). */
  witnessedCheckpoint(logId: string, fromSize: number | undefined): Promise<CheckpointAnswer>;
  /** The newest platform-signed checkpoint, proven consistent with `fromSize` (the witness). */
  latestCheckpoint(logId: string, fromSize: number | undefined): Promise<CheckpointAnswer>;
  /** Keeps a cosignature of one of the log's checkpoints by the hospital's witness. */
  cosign(logId: string, note: string, witnessKey: string): Promise<{ size: number; recorded: boolean }>;
  /** The size of the newest cosigned checkpoint (0 before the first). */
  witnessedSize(logId: string): Promise<number>;
  /** Inclusion proofs for leaves `indexes` in the tree of `size` (at most the cosigned size). */
  inclusionProofs(logId: string, indexes: readonly number[], size: number): Promise<string[][]>;
}

const encodeProof = (proof: readonly Uint8Array[]) => proof.map((hash) => toBase64Url(hash));

export function createTransparency(options: TransparencyOptions): Transparency {
  const { objects, registry, apiBase, clock } = options;

  async function answer(
    logId: string,
    state: LogState,
    note: string | undefined,
    size: number,
    fromSize?: number,
  ) {
    const proof =
      note === undefined || fromSize === undefined || fromSize === 0 || fromSize >= size
        ? []
        : await logProofs(objects, logId).consistency(fromSize, size);
    return {
      ...(state.verifierKey ? { logKey: state.verifierKey } : {}),
      ...(note !== undefined ? { checkpoint: note } : {}),
      consistencyProof: encodeProof(proof),
    };
  }

  function invalid(): ProtocolError {
    return new ProtocolError('COSIGNATURE_INVALID');
  }

  return Object.freeze({
    async witnessedCheckpoint(logId: string, fromSize: number | undefined) {
      const state = await registry.state(logId);
      return answer(logId, state, state.witnessed?.note, state.witnessed?.size ?? 0, fromSize);
    },

    async latestCheckpoint(logId: string, fromSize: number | undefined) {
      const [state, current] = await Promise.all([registry.state(logId), objects.checkpoint(logId)]);
      return answer(logId, state, current?.note, current?.checkpoint.size ?? 0, fromSize);
    },

    async cosign(logId: string, note: string, witnessKey: string) {
      const state = await registry.state(logId);
      const publicKey = fromBase64Url(witnessKey);
      if (!state.verifierKey || !publicKey) throw invalid();
      let size: number;
      let cosignedAt: number | undefined;
      try {
        const log = ed25519VerifierFromKey(state.verifierKey);
        const witness = cosignatureVerifier(witnessKeyName(logId), publicKey);
        const opened = openCheckpoint(note, {
          origin: auditLogOrigin(apiBase, logId),
          verifiers: [log, witness],
        });
        const line = opened.verified.find((v) => v.verifier === witness);
        if (!opened.verified.some((v) => v.verifier === log) || !line) throw invalid();
        cosignedAt = witness.timestampOf(line.signature.signature);
        size = opened.checkpoint.size;
        // It must be a checkpoint of this log as published: its root is the tree's at that size.
        const current = await objects.checkpoint(logId);
        if (!current || size > current.checkpoint.size || size === 0) throw invalid();
        const root = await logProofs(objects, logId).root(size);
        if (!hashesEqual(root, opened.checkpoint.rootHash)) throw invalid();
      } catch (error) {
        if (error instanceof TlogError) throw invalid();
        throw error;
      }
      // A witness whose clock runs ahead must not make entries look older than they are.
      const at = new Date(Math.min((cosignedAt ?? 0) * 1000, clock.now().getTime()));
      const outcome = await registry.recordWitnessed(logId, { size, note, cosignedAt: at }, witnessKey);
      if (outcome === 'key-mismatch') throw new ProtocolError('WITNESS_KEY_MISMATCH');
      return { size, recorded: outcome === 'recorded' };
    },

    async witnessedSize(logId: string) {
      return (await registry.state(logId)).witnessed?.size ?? 0;
    },

    async inclusionProofs(logId: string, indexes: readonly number[], size: number) {
      const proofs = logProofs(objects, logId);
      try {
        return await Promise.all(
          indexes.map(async (index) => encodeProof(await proofs.inclusion(index, size))),
        );
      } catch (error) {
        // Proofs exist only against trees the log published; a caller naming another size asked wrongly.
        if (error instanceof TlogError) {
          throw new ProtocolError('INVALID_REQUEST', 'no published tree has that size', {
            field: 'treeSize',
          });
        }
        throw error;
      }
    },
  });
}
