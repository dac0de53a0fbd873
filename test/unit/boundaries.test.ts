// The dependency rules of docs/ARCHITECTURE.md hold for every tracked source file: no import
// crosses a boundary the table does not allow, and each workspace declares what it imports.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkBoundaries, checkTable, parseRulesTable, repositoryWorkspaces } from '../helpers/boundaries.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function trackedSources(): Map<string, string> {
  const files = execFileSync(
    'git',
    ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts', '*.js'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  )
    .split('\n')
    .filter(Boolean);
  return new Map(files.map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]));
}

describe('the dependency rules of docs/ARCHITECTURE.md', () => {
  const rules = parseRulesTable(readFileSync(join(ROOT, 'docs/ARCHITECTURE.md'), 'utf8'));
  const workspaces = repositoryWorkspaces(ROOT);

  it('name only workspaces and modules that exist', () => {
    expect(rules.length).toBeGreaterThan(10);
    expect(checkTable(rules, workspaces)).toEqual([]);
    expect(Object.keys(workspaces).sort()).toEqual([
      'clients',
      'core',
      'device-sdk',
      'emulator',
      'functions',
      'root',
    ]);
  });

  it('hold for every import in the repository', () => {
    const sources = trackedSources();
    expect(sources.size).toBeGreaterThan(200);
    const violations = checkBoundaries(sources, rules, workspaces).map(
      (v) => `${v.file}:${v.line} ${v.specifier}: ${v.reason}`,
    );
    expect(violations).toEqual([]);
  });
});
