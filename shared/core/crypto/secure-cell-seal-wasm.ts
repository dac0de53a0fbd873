// Secure Cell Seal where node:crypto is not there (browsers, React Native): wasm-themis itself,
// with the same two functions as secure-cell-seal.ts, so record-cell.ts runs unchanged on both.
// shared/core/package.json maps `#seal-engine` to this file for every platform but Node; the
// differential tests already hold the two engines to the same bytes, both ways.
import { concatBytes } from './bytes.ts';
import { CryptoError } from './errors.ts';
import { callThemis, themis, tryThemis } from './themis.ts';

function cellOf(masterKey: Uint8Array) {
  return callThemis(
    () => themis().SecureCellSeal.withKey(masterKey),
    () => new CryptoError('KEY_INVALID', 'Themis rejected the master key'),
  );
}

/** Seals `message` (given whole or as parts) under `masterKey`, bound to `context`. */
export function sealCellPieces(
  masterKey: Uint8Array,
  message: Uint8Array | readonly Uint8Array[],
  context: Uint8Array,
): Uint8Array[] {
  if (masterKey.length === 0) throw new CryptoError('KEY_INVALID', 'the master key is empty');
  const whole = message instanceof Uint8Array ? message : concatBytes(message);
  if (whole.length === 0) throw new CryptoError('INPUT_INVALID', 'Secure Cell seals 1 byte to 4 GiB - 1');
  return [
    callThemis(
      () => cellOf(masterKey).encrypt(whole, context),
      () => new CryptoError('INPUT_INVALID', 'Themis could not seal the message'),
    ),
  ];
}

/** Opens a sealed cell; undefined if it is malformed or fails authentication. */
export function openCell(
  masterKey: Uint8Array,
  sealed: Uint8Array,
  context: Uint8Array,
): Uint8Array | undefined {
  if (masterKey.length === 0 || sealed.length === 0) return undefined;
  return tryThemis(() => cellOf(masterKey).decrypt(sealed, context));
}
