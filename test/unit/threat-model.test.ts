// The threat model is the index of the security suite: every row must name tests that exist, and
// every security test file must answer some row, or the report (npm run security-report) and CI
// would silently stop proving a claim.
import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { testsOfRow, threatRows } from '../security-report.ts';

describe('docs/THREAT_MODEL.md', () => {
  it('names existing tests in every row, and every security test file in some row', async () => {
    const rows = threatRows(await readFile('docs/THREAT_MODEL.md', 'utf8'));
    expect(rows.length).toBeGreaterThanOrEqual(25);
    expect(new Set(rows.map((row) => row.id)).size).toBe(rows.length);
    for (const row of rows) {
      expect(row.files, row.id).not.toEqual([]);
      for (const file of row.files) expect(existsSync(file), `${row.id}: ${file}`).toBe(true);
    }
    const named = new Set(rows.flatMap((row) => row.files));
    const security = (await readdir('test/security')).filter((name) => name.endsWith('.test.ts'));
    for (const name of security) expect(named.has(`test/security/${name}`), name).toBe(true);
  });

  it("counts a file's tests named with the row's id, or the whole file when none is", () => {
    const row = { id: 'P1', threat: 'x', files: ['test/security/a.test.ts', 'test/integration/b.test.ts'] };
    const results = [
      { file: 'test/security/a.test.ts', name: 'attacks > P1 guessed tokens', status: 'passed' },
      { file: 'test/security/a.test.ts', name: 'attacks > P12 something else', status: 'failed' },
      { file: 'test/security/a.test.ts', name: 'attacks > P2 replay', status: 'failed' },
      { file: 'test/integration/b.test.ts', name: 'pairing > counts attempts', status: 'passed' },
      { file: 'test/integration/b.test.ts', name: 'pairing > locks', status: 'failed' },
    ];
    expect(testsOfRow(row, results).map((test) => test.name)).toEqual([
      'attacks > P1 guessed tokens',
      'pairing > counts attempts',
      'pairing > locks',
    ]);
  });
});
