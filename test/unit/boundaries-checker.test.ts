// The dependency rules checker itself: it must fail on wrong imports, or a green
// boundaries.test.ts would prove nothing. Sources here are made up; nothing is read from disk
// except docs/ARCHITECTURE.md, whose real table must refuse a deliberately wrong import.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  checkBoundaries,
  checkTable,
  importsOf,
  parseRulesTable,
  repositoryWorkspaces,
  type Workspace,
} from '../helpers/boundaries.ts';

const TABLE = `
# Map

## Dependency rules

| Module | Workspace | May import |
| --- | --- | --- |
| \`lib/\` | lib | \`zod\` |
| \`lib/types.ts\` | lib | — |
| \`app/\` | app | \`lib/\`, \`types: svc/\`, \`left-pad\` |
| \`svc/\` | app | — |
| \`test/\` | root | \`*\` |

## Next section
`;

const WORKSPACES: Record<string, Workspace> = {
  lib: { name: '@x/lib', dependencies: new Set(['zod']) },
  app: {
    name: '@x/app',
    dependencies: new Set(['@x/lib']),
    imports: new Map([
      ['#engine', ['app/engine-node.ts', 'lib/engine-web.ts']],
      ['#leaky', ['app/engine-node.ts', 'svc/engine.ts']],
    ]),
  },
  root: { name: '', dependencies: new Set(['whatever']) },
};

const rules = parseRulesTable(TABLE);
const check = (files: Record<string, string>) =>
  checkBoundaries(new Map(Object.entries(files)), rules, WORKSPACES).map(
    (v) => `${v.file}:${v.line} ${v.reason}`,
  );

describe('the dependency rules checker', () => {
  it('reads the table under its heading, and nothing after it', () => {
    expect(rules.map((rule) => rule.module)).toEqual(['lib/', 'lib/types.ts', 'app/', 'svc/', 'test/']);
    expect(rules[2]!.allow).toEqual([
      { kind: 'path', path: 'lib/', typesOnly: false },
      { kind: 'path', path: 'svc/', typesOnly: true },
      { kind: 'package', name: 'left-pad', typesOnly: false },
    ]);
    expect(() => parseRulesTable('# no rules here')).toThrow(/Dependency rules/);
  });

  it('passes allowed imports: own module, allowed modules, built-ins, type-only where only types are allowed', () => {
    expect(
      check({
        'app/main.ts': [
          "import { a } from './other.ts';",
          "import { b } from '../lib/b.ts';",
          "import type { S } from '../svc/s.ts';",
          "import { readFile } from 'node:fs/promises';",
          "import { join } from 'path';",
        ].join('\n'),
        'lib/b.ts': "import { z } from 'zod';\nexport const b = z.string();",
        'test/x.test.ts': "import anything from '../svc/s.ts';\nimport y from 'whatever';",
      }),
    ).toEqual([]);
  });

  it('fails a deliberately wrong import, a value import of a types-only module and a longer row', () => {
    expect(
      check({
        'lib/b.ts': "import { main } from '../app/main.ts';",
        'app/main.ts': "import { S } from '../svc/s.ts';",
        'lib/types.ts': "import { z } from 'zod';",
      }),
    ).toEqual([
      'lib/b.ts:1 lib/ may not import app/',
      'lib/b.ts:1 workspace @x/lib does not declare @x/app',
      'app/main.ts:1 app/ may not import svc/',
      'lib/types.ts:1 lib/types.ts may not import the package zod',
    ]);
  });

  it('fails a package the table allows but the workspace does not declare, and one it does not allow', () => {
    expect(
      check({ 'app/main.ts': "import pad from 'left-pad';\nexport const lazy = () => import('zod/mini');" }),
    ).toEqual([
      'app/main.ts:1 left-pad is not a dependency of @x/app',
      'app/main.ts:2 app/ may not import the package zod',
      'app/main.ts:2 zod is not a dependency of @x/app',
    ]);
  });

  it('checks a package.json "imports" entry as an edge to every file it may stand for', () => {
    expect(check({ 'app/main.ts': "import { e } from '#engine';" })).toEqual([]);
    expect(check({ 'app/main.ts': "import { e } from '#leaky';\nimport { n } from '#nowhere';" })).toEqual([
      'app/main.ts:1 app/ may not import svc/',
      'app/main.ts:2 #nowhere is not in the "imports" of app',
    ]);
  });

  it('fails a file no row covers and an import of one', () => {
    expect(check({ 'scripts/run.ts': '', 'app/main.ts': "export * from '../scripts/run.ts';" })).toEqual([
      'scripts/run.ts:1 no row of the table covers this file',
      'app/main.ts:1 scripts/run.ts is in no module of the table',
    ]);
  });

  it('tells type-only imports and re-exports from value ones', () => {
    const edges = importsOf(
      'a.ts',
      [
        "import type { A } from 'a';",
        "import { type B, type C } from 'b';",
        "import { type D, E } from 'c';",
        "export type { F } from 'd';",
        "export { G } from 'e';",
        "type H = import('f').H;",
        "import 'g';",
      ].join('\n'),
    );
    expect(edges.map((edge) => [edge.specifier, edge.typesOnly])).toEqual([
      ['a', true],
      ['b', true],
      ['c', false],
      ['d', true],
      ['e', false],
      ['f', true],
      ['g', false],
    ]);
  });

  it('refuses a table row naming a module or workspace that does not exist', () => {
    const broken = parseRulesTable(
      TABLE.replace('`lib/`, `types: svc/`', '`lbi/`, `types: svc/`').replace('| app |', '| ap |'),
    );
    expect(checkTable(broken, WORKSPACES)).toEqual([
      'app/: unknown workspace "ap"',
      'app/: "lbi/" is no module of the table',
    ]);
  });

  it('with the repository table, refuses a service that imports an adapter or an SDK', () => {
    const real = parseRulesTable(
      readFileSync(fileURLToPath(new URL('../../docs/ARCHITECTURE.md', import.meta.url)), 'utf8'),
    );
    const violations = checkBoundaries(
      new Map([
        [
          'shared/services/wrong.ts',
          "import { createBlobStore } from '../adapters/blob-store.ts';\nimport { Firestore } from '@google-cloud/firestore';",
        ],
        ['shared/core/protocol/wrong.ts', "import { ProtocolError } from '../../http/api-function.ts';"],
      ]),
      real,
      repositoryWorkspaces(fileURLToPath(new URL('../..', import.meta.url))),
    ).map((v) => `${v.file}:${v.line} ${v.reason}`);
    expect(violations).toEqual([
      'shared/services/wrong.ts:1 shared/services/ may not import shared/adapters/',
      'shared/services/wrong.ts:2 shared/services/ may not import the package @google-cloud/firestore',
      'shared/core/protocol/wrong.ts:1 shared/core/protocol/ may not import shared/http/',
      'shared/core/protocol/wrong.ts:1 workspace @clinic-bridge/core does not declare @clinic-bridge/functions',
    ]);
  });
});
