// A request as the HTTP edge hands it to a service for signature checking (docs/PROTOCOL.md
// §8), and the one place services verify it: the injected clock, the nonce store, and the
// key kinds an endpoint accepts. Each service supplies only how a key id resolves to a key.
import { importPublicKey, type PublicKey } from '../core/crypto/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { Logger } from '../ports/logger.ts';
import type { HospitalRegistry, NonceStore } from '../ports/pairing-store.ts';
import {
  ProtocolError,
  verifyRequest,
  type HeaderBag,
  type KeyId,
  type KeyKind,
  type VerifiedRequest,
} from '../core/protocol/index.ts';

export interface SignedCall {
  /** This deployment's apiBase, which the signature must name (set by the HTTP edge). */
  readonly audience: string;
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
      return verifyRequest({
        audience: call.audience,
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

/**
 * Verifies hospital-signed calls (the connector's API): the key must be registered to an active
 * hospital. Returns the calling hospital's id.
 */
export function createHospitalCaller(options: {
  readonly hospitals: HospitalRegistry;
  readonly clock: Clock;
  readonly nonces: NonceStore;
}): (call: SignedCall) => Promise<string> {
  const verifier = createCallVerifier({
    accept: ['hospital'],
    clock: options.clock,
    nonces: options.nonces,
    async resolveKey(keyId) {
      const hospital = await options.hospitals.getHospital(keyId.id);
      if (!hospital) return undefined;
      if (hospital.status !== 'active' || hospital.expiresAt <= options.clock.now()) {
        throw new ProtocolError('HOSPITAL_SUSPENDED');
      }
      const key = hospital.publicKeys[keyId.fingerprint];
      return key === undefined ? undefined : importPublicKey(key);
    },
  });
  return async (call) => (await verifier.verify(call)).keyId.id;
}
