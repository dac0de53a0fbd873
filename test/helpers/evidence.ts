// What the security suite tried, for `npm run security-report`. Tests state each attack's
// outcome, fuzz case counts, fault points and load figures here; the report script sets
// SECURITY_EVIDENCE_FILE and joins these lines with the pass/fail result of the test that wrote
// them. Outside that script nothing is written.
import { appendFileSync } from 'node:fs';
import { expect } from 'vitest';

export type Evidence =
  | { readonly kind: 'attack'; readonly threat: string; readonly attack: string; readonly outcome: string }
  | { readonly kind: 'fuzz'; readonly target: string; readonly cases: number }
  | { readonly kind: 'fault'; readonly flow: string; readonly point: string; readonly outcome: string }
  | { readonly kind: 'load'; readonly figures: Readonly<Record<string, number | string>> };

export function recordEvidence(evidence: Evidence): void {
  const file = process.env.SECURITY_EVIDENCE_FILE;
  if (!file) return;
  const test = expect.getState().currentTestName ?? '';
  appendFileSync(file, `${JSON.stringify({ ...evidence, test })}\n`);
}
