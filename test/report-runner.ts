// What `npm run security-report` and `npm run compliance-report` share: run exactly the test files
// a document names through vitest, read vitest's own verdicts back, and say per row whether its
// tests passed. A row can never read "passed" for a test that failed or did not run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface TestResult {
  readonly file: string;
  readonly name: string;
  readonly status: string;
}

/** The test files a table cell names as `unit/x`, `integration/y` …, as paths. */
export function namedTestFiles(cell: string): string[] {
  return [...cell.matchAll(/`((?:security|integration|unit|infra|conformance|rules)\/[a-z0-9-]+)`/g)]
    .map((match) => `test/${match[1]}.test.ts`)
    .filter((file, index, all) => all.indexOf(file) === index);
}

function vitestResults(json: unknown): TestResult[] {
  const report = json as {
    testResults: {
      name: string;
      assertionResults: { ancestorTitles: string[]; title: string; status: string }[];
    }[];
  };
  return report.testResults.flatMap((file) =>
    file.assertionResults.map((test) => ({
      file: file.name.startsWith(ROOT) ? file.name.slice(ROOT.length) : file.name,
      name: [...test.ancestorTitles, test.title].join(' > '),
      status: test.status,
    })),
  );
}

/** Runs the files with vitest (its usual output on the terminal); undefined if it wrote no results. */
export async function runTests(
  files: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ results: TestResult[]; status: number | null } | undefined> {
  const work = await mkdtemp(join(tmpdir(), 'cb-report-'));
  try {
    const jsonFile = join(work, 'results.json');
    const run = spawnSync(
      join(ROOT, 'node_modules/.bin/vitest'),
      ['run', ...files, '--reporter=default', '--reporter=json', `--outputFile.json=${jsonFile}`],
      { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } },
    );
    if (!existsSync(jsonFile)) return undefined;
    return { results: vitestResults(JSON.parse(await readFile(jsonFile, 'utf8'))), status: run.status };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A report cell: how many of a row's tests passed. */
export function outcomeOf(tests: readonly TestResult[]): string {
  const failed = tests.filter((test) => test.status !== 'passed');
  if (tests.length === 0) return '**no test ran**';
  return failed.length === 0 ? `${tests.length} passed` : `**${failed.length} of ${tests.length} failed**`;
}

export function escapeCell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

export function currentCommit(): string {
  return (
    spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() ||
    'unknown'
  );
}
