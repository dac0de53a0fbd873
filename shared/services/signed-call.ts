// A request as the HTTP edge hands it to a service for signature checking (docs/PROTOCOL.md
// §8), and the one place services verify it: the injected clock, the nonce store, and the
// key kinds an endpoint accepts. Each service supplies only how a key id resolves to a key.
import { loadThemis, type PublicKey } from '../crypto/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { Logger } from '../ports/logger.ts';
import type { NonceStore } from '../ports/pairing-store.ts';
import {
  verifyRequest,
  type HeaderBag,
  type KeyId,
  type KeyKind,
  type VerifiedRequest,
} from '../protocol/index.ts';

export interface SignedCall {
  readonly method: string;
  /** The signing target, from the versioned prefix on (/pairing/v1/…, /records/v1/…), query included. */
  readonly target: string;
  readonly headers: HeaderBag;
  readonly body: Uint8Array;
  readonly logger?: Logger;
}

export interface CallVerifier {
  verify(call: SignedCall): Promise<VerifiedRequest>;
}

export function createCallVerifier(options: {
  readonly accept: readonly KeyKind[];
  readonly clock: Clock;
  readonly nonces: NonceStore;
  /** The registered key, undefined if none; throw a ProtocolError to refuse a known key. */
  readonly resolveKey: (keyId: KeyId) => Promise<PublicKey | undefined>;
}): CallVerifier {
  return Object.freeze({
    async verify(call: SignedCall) {
      await loadThemis();
      return verifyRequest({
        method: call.method,
        target: call.target,
        body: call.body,
        headers: call.headers,
        accept: options.accept,
        clock: options.clock,
        resolveKey: options.resolveKey,
        rememberNonce: (keyId, nonce, expiresAt) => options.nonces.remember(keyId, nonce, expiresAt),
      });
    },
  });
}

/** The signing target of a function request: its versioned prefix, path and raw query. */
export function signingTarget(prefix: string, path: string, rawQuery: string): string {
  return `${prefix}${path}${rawQuery === '' ? '' : `?${rawQuery}`}`;
}
