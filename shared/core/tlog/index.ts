// The transparency-log core: RFC 6962 hashing and proofs, tlog-tiles layout, signed notes,
// checkpoints and cosignatures. Pure functions over bytes; storage and HTTP live elsewhere.
export * from './errors.ts';
export * from './hash.ts';
export * from './tree.ts';
export * from './tiles.ts';
export * from './entries.ts';
export * from './note.ts';
export * from './keys.ts';
export * from './ed25519.ts';
export * from './cosignature.ts';
export * from './checkpoint.ts';
export * from './audit-leaf.ts';
export * from './follower.ts';
