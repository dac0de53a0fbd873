// docs/COMPLIANCE.md is checked like the threat model: every required duty has a row, and every
// row names tests that exist or says why none can prove it, so the compliance report never
// silently stops proving a duty.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { complianceRows, matrixProblems } from '../compliance/matrix.ts';

describe('docs/COMPLIANCE.md', () => {
  it('has a row for every required duty, each with existing tests or a reason', () => {
    const rows = complianceRows(readFileSync('docs/COMPLIANCE.md', 'utf8'));
    expect(rows.length).toBeGreaterThanOrEqual(20);
    expect(matrixProblems(rows, existsSync)).toEqual([]);
  });

  it("cites only rows that exist from docs/DPIA.md's measures", () => {
    const ids = new Set(complianceRows(readFileSync('docs/COMPLIANCE.md', 'utf8')).map((row) => row.id));
    const dpia = readFileSync('docs/DPIA.md', 'utf8');
    const measures = dpia.slice(dpia.indexOf('## C. Risks'));
    const cited = [...measures.matchAll(/\b([GWNS]\d{1,2})\b/g)].map((match) => match[1]!);
    expect(cited.length).toBeGreaterThan(10);
    for (const id of cited) expect(ids, id).toContain(id);
  });

  it('reports a row naming a missing test, a row with no proof, and a duty without a row', () => {
    const table = [
      '| G1 | GDPR art. 5(1)(c): minimisation | c | `unit/does-not-exist` | h |',
      '| G2 | GDPR art. 5(1)(e): storage | c | nothing here | h |',
      '| G9 | GDPR art. 35: DPIA | c | Reason: a judgement | h |',
    ].join('\n');
    const rows = complianceRows(table);
    expect(rows.map((row) => [row.id, row.files, row.reason])).toEqual([
      ['G1', ['test/unit/does-not-exist.test.ts'], undefined],
      ['G2', [], undefined],
      ['G9', [], 'a judgement'],
    ]);
    const problems = matrixProblems(rows, existsSync);
    expect(problems).toContain('G1: test/unit/does-not-exist.test.ts does not exist');
    expect(problems).toContain('G2: names neither a test nor a reason');
    expect(problems).toContain('no row for GDPR art. 17');
    expect(problems).not.toContain('no row for GDPR art. 35');
  });
});
