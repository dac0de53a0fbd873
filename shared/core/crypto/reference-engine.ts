// The benchmark's own entry to the record path over wasm-themis, the reference engine. It is
// not part of the public API (index.ts): production seals with node:crypto, and nothing can
// switch that globally. Both engines make and accept the same bytes
// (test/unit/crypto-secure-cell-seal.test.ts).
import { recordCodec, wasmThemisCells, type RecordCodec } from './record-cell.ts';

export const wasmThemisRecords: RecordCodec = recordCodec(wasmThemisCells);
