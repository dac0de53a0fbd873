// The hospital's witness of its audit transparency log (docs/PROTOCOL.md §16): the connector
// follows the log the platform keeps for this hospital and cosigns a checkpoint only after
// checking that the platform signed it and that it extends the one cosigned before. Phones
// accept only checkpoints this witness cosigned, so a platform that rewrote history, or showed
// one phone another history, is refused by the witness and then by every phone.
//
// The witness key is derived from the custody's pseudonym key, so there is nothing new to back
// up and an HSM custody (which computes the HMAC inside) works as a file custody does:
//   seed = HMAC-SHA256(pseudonymKey, UTF-8 "cb/tlog/witness-seed/v1")
import { join } from 'node:path';
import {
  cosignatureResponseSchema,
  toBase64Url,
  witnessCheckpointResponseSchema,
  type HmacKey,
} from '../../shared/core/protocol/index.ts';
import {
  cosignatureSigner,
  cosignCheckpoint,
  witnessKeyName,
  type CosignatureSigner,
} from '../../shared/core/tlog/index.ts';
import { followCheckpoint, readFollowedLog, saveFollowedLog } from '../lib/audit-log.ts';
import type { Connector, ConnectorHome } from './home.ts';

export const WITNESS_SEED_LABEL = 'cb/tlog/witness-seed/v1';

/** The witness's Ed25519 seed: the one place it is derived. */
export function witnessSeed(pseudonymKey: HmacKey): Uint8Array {
  return pseudonymKey.hmac(new TextEncoder().encode(WITNESS_SEED_LABEL));
}

/** The hospital's witness: cosigns with POSIX seconds from `now`. */
export function witnessSigner(
  connector: Pick<Connector, 'hospitalId' | 'custody'>,
  now: () => number = () => Math.floor(Date.now() / 1000),
): CosignatureSigner {
  const seed = witnessSeed(connector.custody.pseudonymKey);
  try {
    return cosignatureSigner(witnessKeyName(connector.hospitalId), seed, now);
  } finally {
    seed.fill(0);
  }
}

/** The witness's 32-byte public key (what the invitation QR carries). */
export function witnessPublicKey(connector: Pick<Connector, 'hospitalId' | 'custody'>): Uint8Array {
  return witnessSigner(connector).publicKey;
}

/** Where the witness keeps the log key it pinned and the last checkpoint it cosigned. */
export function witnessStatePath(home: ConnectorHome): string {
  return join(home.dir, 'witness.json');
}

export interface WitnessRound {
  /** The size of the newest checkpoint this witness has cosigned (0 before the first). */
  readonly size: number;
  /** Whether this round cosigned a new checkpoint. */
  readonly cosigned: boolean;
}

/**
 * One round: fetch the platform's newest checkpoint with a consistency proof from the last one
 * cosigned, check it, cosign it, hand the cosignature back, and only then keep it. Throws
 * RefusedError (LOG_INCONSISTENT, LOG_ROLLBACK, LOG_SIGNATURE_INVALID, LOG_KEY_CHANGED, …) and
 * keeps its state when the log cannot be trusted.
 */
export async function witnessOnce(connector: Connector): Promise<WitnessRound> {
  const path = witnessStatePath(connector.home);
  const saved = await readFollowedLog(path);
  const answer = await connector.api.call(
    { method: 'GET', target: `/pairing/v1/audit-log/checkpoint?fromSize=${saved?.size ?? 0}` },
    witnessCheckpointResponseSchema,
  );
  const followed = followCheckpoint({
    prefix: 'LOG',
    apiBase: connector.config.apiBase,
    hospitalId: connector.hospitalId,
    witnesses: [],
    saved,
    answer,
  });
  // Nothing published yet, an empty tree, or the tree already cosigned: nothing to do.
  if (followed === undefined || followed.state.size === 0 || followed.state.size === saved?.size) {
    return { size: saved?.size ?? 0, cosigned: false };
  }
  const signer = witnessSigner(connector);
  const cosigned = await cosignCheckpoint(answer.checkpoint!, [signer]);
  await connector.api.call(
    {
      method: 'POST',
      target: '/pairing/v1/audit-log/cosignature',
      json: { checkpoint: cosigned, witnessKey: toBase64Url(signer.publicKey) },
    },
    cosignatureResponseSchema,
  );
  await saveFollowedLog(path, followed.state);
  return { size: followed.state.size, cosigned: true };
}
