// What shared/core needs from the platform it runs on, and nothing more. Two implementations
// give it: node.ts (node:crypto and Buffer, for the functions, the connector and cb-device)
// and web.ts (WebCrypto randomness, audited pure-TypeScript hashes and curves, for browsers
// and React Native). shared/core/package.json picks one by the "node" export condition, so a
// browser bundle of the device SDK never reaches node.ts (test/integration/device-sdk-browser).
export interface Sha256 {
  update(data: Uint8Array): Sha256;
  /** The 32-byte digest; the hash cannot be updated afterwards. */
  digest(): Uint8Array;
}

export interface Platform {
  readonly name: 'node' | 'web';
  createSha256(): Sha256;
  hmacSha256(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
  randomBytes(length: number): Uint8Array;
  /** Base64 (RFC 4648 §4, padded) or base64url (§5, unpadded); decoding is lenient, callers check. */
  encodeBase64(bytes: Uint8Array, url: boolean): string;
  decodeBase64(text: string, url: boolean): Uint8Array;
  /** The 33-byte compressed form of a SEC1 P-256 point; undefined if it is not on the curve. */
  p256Compress(point: Uint8Array): Uint8Array | undefined;
  /** The compressed public point of a 32-byte P-256 scalar; undefined if it is not valid. */
  p256PublicOf(scalar: Uint8Array): Uint8Array | undefined;
  /** RFC 8032 Ed25519 from a 32-byte seed. */
  ed25519PublicOf(seed: Uint8Array): Uint8Array;
  ed25519Signer(seed: Uint8Array): (message: Uint8Array) => Uint8Array;
  /** A verifier for a 32-byte public key; undefined if it is not a valid Ed25519 point. */
  ed25519Verifier(
    publicKey: Uint8Array,
  ): ((message: Uint8Array, signature: Uint8Array) => boolean) | undefined;
}
