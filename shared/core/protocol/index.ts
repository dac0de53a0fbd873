// The public API of shared/core/protocol: Clinic Bridge's wire formats (protocol v2), specified for
// other implementations in docs/PROTOCOL.md. Everything here is pure apart from Themis calls
// through shared/core/crypto and node:crypto hashing.
export * from './error-codes.ts';
export {
  base64UrlLength,
  canonicalJson,
  fromBase64Url,
  parseCanonicalJson,
  sha256,
  toBase64Url,
} from './encoding.ts';
export type { JsonValue } from './encoding.ts';
export * from './ids.ts';
export * from './hmac-key.ts';
export * from './binding.ts';
export * from './qr.ts';
export * from './signed-document.ts';
export * from './documents.ts';
export * from './deletion-receipt.ts';
export * from './device-link.ts';
export * from './record-payload.ts';
export * from './container.ts';
export * from './upload.ts';
export * from './request-signing.ts';
export * from './api.ts';
export type { ByteSource } from './byte-reader.ts';
