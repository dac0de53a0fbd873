// The dependency rules checker: reads the one table of allowed dependencies (the "Dependency
// rules" section of docs/ARCHITECTURE.md) and lists every import that breaks it. The checks are
// pure (handed file sources and workspaces), so test/unit/boundaries-checker.test.ts can show them
// failing on a deliberately wrong import; only repositoryWorkspaces() reads package.json files.
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { builtinModules } from 'node:module';
import ts from 'typescript';

/** What a module may import: anything, another module of the table (a path), or a package. */
export type Allowance =
  | { readonly kind: 'any' }
  | { readonly kind: 'path'; readonly path: string; readonly typesOnly: boolean }
  | { readonly kind: 'package'; readonly name: string; readonly typesOnly: boolean };

export interface Rule {
  /** A folder (ends with '/') or a single file, relative to the repository root. */
  readonly module: string;
  /** The workspace whose package.json must declare the packages and workspaces it imports. */
  readonly workspace: string;
  readonly allow: readonly Allowance[];
}

export interface Workspace {
  /** The npm package name, e.g. @clinic-bridge/core ('' for the repository root). */
  readonly name: string;
  /** Packages and workspaces it may import at run time (for the root: everything installed). */
  readonly dependencies: ReadonlySet<string>;
  /**
   * Its package.json "imports" (`#name` → every file it may stand for, under any condition,
   * relative to the repository root): such an import is checked as an edge to each file.
   */
  readonly imports?: ReadonlyMap<string, readonly string[]>;
}

export interface ImportEdge {
  readonly specifier: string;
  readonly typesOnly: boolean;
  readonly line: number;
}

export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly specifier: string;
  readonly reason: string;
}

const SECTION = '## Dependency rules';
const BUILTINS = new Set(builtinModules);

/** The rules table: the first Markdown table after the "## Dependency rules" heading. */
export function parseRulesTable(markdown: string): Rule[] {
  const start = markdown.indexOf(SECTION);
  if (start === -1) throw new Error(`no "${SECTION}" section`);
  const lines = markdown.slice(start + SECTION.length).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  if (first === -1) throw new Error(`the "${SECTION}" section has no table`);
  const rows: Rule[] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    const [module, workspace, allowed] = line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim());
    if (module === undefined || workspace === undefined || allowed === undefined) {
      throw new Error(`a rules row needs three cells: ${line}`);
    }
    rows.push({ module: unquote(module), workspace, allow: parseAllowances(allowed) });
  }
  return rows;
}

function unquote(cell: string): string {
  return cell.replace(/^`|`$/g, '');
}

function parseAllowances(cell: string): Allowance[] {
  if (cell === '—' || cell === '') return [];
  return [...cell.matchAll(/`([^`]+)`/g)].map(([, item]) => {
    const typesOnly = item!.startsWith('types: ');
    const target = typesOnly ? item!.slice('types: '.length) : item!;
    if (target === '*') return { kind: 'any' };
    // A module is a folder or a file of the repository; a package is a bare (or scoped) name.
    if (!target.startsWith('@') && (target.includes('/') || /\.(ts|js)$/.test(target))) {
      return { kind: 'path', path: target, typesOnly };
    }
    return { kind: 'package', name: target, typesOnly };
  });
}

/** Every import, re-export and dynamic import of a TypeScript or JavaScript source. */
export function importsOf(fileName: string, source: string): ImportEdge[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const edges: ImportEdge[] = [];
  const add = (literal: ts.Node, typesOnly: boolean) => {
    if (!ts.isStringLiteral(literal)) return;
    const { line } = file.getLineAndCharacterOfPosition(literal.getStart());
    edges.push({ specifier: literal.text, typesOnly, line: line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const allNamedAreTypes =
        named !== undefined &&
        ts.isNamedImports(named) &&
        named.elements.length > 0 &&
        named.elements.every((element) => element.isTypeOnly);
      add(node.moduleSpecifier, !!clause && (clause.isTypeOnly || (!clause.name && allNamedAreTypes)));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      if (node.arguments[0]) add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return edges;
}

/** The package a bare specifier names: `firebase-admin/app` → `firebase-admin`. */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function covers(module: string, path: string): boolean {
  return module.endsWith('/') ? path.startsWith(module) : path === module;
}

/** The row a repository path belongs to: the longest module that covers it. */
export function ruleFor(rules: readonly Rule[], path: string): Rule | undefined {
  let best: Rule | undefined;
  for (const rule of rules) {
    if (covers(rule.module, path) && (!best || rule.module.length > best.module.length)) best = rule;
  }
  return best;
}

/** Rows that name a workspace or a module path the table does not have. */
export function checkTable(
  rules: readonly Rule[],
  workspaces: Readonly<Record<string, Workspace>>,
): string[] {
  const problems: string[] = [];
  for (const rule of rules) {
    if (!workspaces[rule.workspace]) problems.push(`${rule.module}: unknown workspace "${rule.workspace}"`);
    for (const allowance of rule.allow) {
      if (allowance.kind === 'path' && !rules.some((other) => covers(allowance.path, other.module))) {
        problems.push(`${rule.module}: "${allowance.path}" is no module of the table`);
      }
    }
  }
  return problems;
}

function allows(rule: Rule, edge: ImportEdge, target: { path?: string; pkg?: string }): boolean {
  return rule.allow.some((allowance) => {
    if (allowance.kind === 'any') return true;
    if (allowance.typesOnly && !edge.typesOnly) return false;
    if (allowance.kind === 'path') return target.path !== undefined && covers(allowance.path, target.path);
    return target.pkg === allowance.name;
  });
}

/**
 * Every import in `files` (repository path → source) that the table does not allow, that a
 * file's workspace does not declare, or that comes from a file no row covers.
 */
export function checkBoundaries(
  files: ReadonlyMap<string, string>,
  rules: readonly Rule[],
  workspaces: Readonly<Record<string, Workspace>>,
): Violation[] {
  const violations: Violation[] = [];
  for (const [file, source] of files) {
    const rule = ruleFor(rules, file);
    if (!rule) {
      violations.push({ file, line: 1, specifier: '', reason: 'no row of the table covers this file' });
      continue;
    }
    const workspace = workspaces[rule.workspace];
    for (const edge of importsOf(file, source)) {
      const refuse = (reason: string) =>
        violations.push({ file, line: edge.line, specifier: edge.specifier, reason });
      const checkPath = (path: string) => {
        const target = ruleFor(rules, path);
        if (!target) {
          refuse(`${path} is in no module of the table`);
          return;
        }
        if (target === rule) return;
        if (!allows(rule, edge, { path })) refuse(`${rule.module} may not import ${target.module}`);
        const owner = workspaces[target.workspace];
        if (
          workspace?.name &&
          owner &&
          target.workspace !== rule.workspace &&
          !workspace.dependencies.has(owner.name)
        ) {
          refuse(`workspace ${workspace.name} does not declare ${owner.name}`);
        }
      };
      if (edge.specifier.startsWith('node:') || BUILTINS.has(edge.specifier)) continue;
      if (edge.specifier.startsWith('.')) {
        checkPath(posix.normalize(posix.join(posix.dirname(file), edge.specifier)));
        continue;
      }
      if (edge.specifier.startsWith('#')) {
        const targets = workspace?.imports?.get(edge.specifier);
        if (targets === undefined) refuse(`${edge.specifier} is not in the "imports" of ${rule.workspace}`);
        for (const path of targets ?? []) checkPath(path);
        continue;
      }
      const pkg = packageOf(edge.specifier);
      if (!allows(rule, edge, { pkg })) refuse(`${rule.module} may not import the package ${pkg}`);
      if (workspace && !edge.typesOnly && !workspace.dependencies.has(pkg)) {
        refuse(`${pkg} is not a dependency of ${workspace.name || 'the repository root'}`);
      }
    }
  }
  return violations;
}

interface Manifest {
  name: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  imports?: Record<string, unknown>;
}

/** Every file a conditional "imports" entry names, whatever the condition. */
function importTargets(folder: string, entry: unknown): string[] {
  if (typeof entry === 'string') return [posix.normalize(posix.join(folder, entry))];
  if (entry === null || typeof entry !== 'object') return [];
  return Object.values(entry).flatMap((value) => importTargets(folder, value));
}

/**
 * The repository's workspaces by the short names the table uses (core, functions, ...), and
 * `root`, for tests and benchmarks, which may use everything installed.
 */
export function repositoryWorkspaces(root: string): Record<string, Workspace> {
  const manifest = (folder: string) =>
    JSON.parse(readFileSync(join(root, folder, 'package.json'), 'utf8')) as Manifest;
  const top = manifest('.');
  const workspaces: Record<string, Workspace> = {};
  const everything = new Set(Object.keys(top.devDependencies ?? {}));
  for (const folder of top.workspaces ?? []) {
    const own = manifest(folder);
    const dependencies = new Set(Object.keys(own.dependencies ?? {}));
    for (const name of dependencies) everything.add(name);
    const imports = new Map(
      Object.entries(own.imports ?? {}).map(([name, entry]) => [name, importTargets(folder, entry)]),
    );
    workspaces[own.name.replace('@clinic-bridge/', '')] = { name: own.name, dependencies, imports };
    everything.add(own.name);
  }
  workspaces.root = { name: '', dependencies: everything };
  return workspaces;
}
