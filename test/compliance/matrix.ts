// docs/COMPLIANCE.md's controls matrix as data: each row's duty, the test files it names (as the
// threat model does) or the reason it names none. Read by `npm run compliance-report` and by
// test/unit/compliance-matrix.test.ts, which keeps the matrix complete and its tests real.
import { namedTestFiles } from '../report-runner.ts';

export interface ComplianceRow {
  readonly id: string;
  readonly duty: string;
  readonly files: string[];
  /** Why no test proves it, when none does ("Reason: …" in the table). */
  readonly reason?: string;
}

/** The duties the matrix must cover, each as the start of some row's duty cell. */
export const REQUIRED_DUTIES = [
  'GDPR art. 5(1)(c)',
  'GDPR art. 5(1)(e)',
  'GDPR art. 17',
  'GDPR art. 25',
  'GDPR art. 28',
  'GDPR art. 30',
  'GDPR art. 32',
  'GDPR art. 33–34',
  'GDPR art. 35',
  'WGBO art. 7:454–7:457',
  'NEN 7513',
  ...['5.15', '5.17', '5.34', '8.5', '8.10', '8.11', '8.12', '8.15', '8.16', '8.24', '8.28'].map(
    (control) => `ISO 27002:2022 ${control}:`,
  ),
] as const;

export function complianceRows(markdown: string): ComplianceRow[] {
  const rows: ComplianceRow[] = [];
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    if (cells.length < 7 || !/^[A-Z]\d+$/.test(cells[1] ?? '')) continue;
    const proof = cells[4] ?? '';
    const reason = /^Reason: (.+)$/.exec(proof)?.[1];
    rows.push({
      id: cells[1]!,
      duty: cells[2]!,
      files: namedTestFiles(proof),
      ...(reason ? { reason } : {}),
    });
  }
  return rows;
}

/** What is wrong with the matrix: rows without proof, missing tests, duties without a row. */
export function matrixProblems(rows: readonly ComplianceRow[], exists: (file: string) => boolean): string[] {
  const problems: string[] = [];
  const ids = rows.map((row) => row.id);
  for (const id of ids.filter((id, i) => ids.indexOf(id) !== i)) problems.push(`${id}: the id is used twice`);
  for (const row of rows) {
    if (row.files.length === 0 && !row.reason) problems.push(`${row.id}: names neither a test nor a reason`);
    if (row.files.length > 0 && row.reason) problems.push(`${row.id}: names tests and a reason`);
    for (const file of row.files) if (!exists(file)) problems.push(`${row.id}: ${file} does not exist`);
  }
  for (const duty of REQUIRED_DUTIES) {
    if (!rows.some((row) => row.duty.startsWith(duty))) problems.push(`no row for ${duty}`);
  }
  return problems;
}
