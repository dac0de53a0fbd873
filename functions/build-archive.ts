// `npm run build`: the deploy archive Cloud Functions installs, in dist/ (or --out DIR).
//
//   package.json       the functions' own dependencies (functions/package.json, plus those of
//                      @clinic-bridge/core, which is compiled in), pinned to the versions the
//                      tests ran with; nothing the clients, the local stack or the tests use
//   package-lock.json  the slice of the repository's lock those dependencies reach, so the
//                      platform's `npm ci` installs exactly what was tested
//   functions/ shared/ the compiled JavaScript (tsconfig.build.json)
//   infra/catalog.json read by the functions at run time
//
// test/infra/deploy-archive.test.ts installs the result on its own and loads every function.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKSPACE_SCOPE = '@clinic-bridge/';

interface PackageJson {
  name: string;
  version: string;
  license?: string;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
}

interface LockEntry {
  version?: string;
  link?: boolean;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [field: string]: unknown;
}

interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/** The folder holding `location` in the lock's tree ('' is the root). */
function parentOf(location: string): string {
  const at = location.lastIndexOf('/node_modules/');
  return at === -1 ? '' : location.slice(0, at);
}

/** Where Node would find `name` required from `location`, as the lock lays the tree out. */
function resolveIn(lock: Lockfile, location: string, name: string): string | undefined {
  for (let from = location; ; from = parentOf(from)) {
    const candidate = `${from ? `${from}/` : ''}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (from === '') return undefined;
  }
}

/** The external dependencies the archive ships: the functions' and core's, workspaces left out. */
export function archiveDependencies(root = ROOT): Record<string, string> {
  const lock = readJson<Lockfile>(join(root, 'package-lock.json'));
  const declared = {
    ...readJson<PackageJson>(join(root, 'shared/core/package.json')).dependencies,
    ...readJson<PackageJson>(join(root, 'functions/package.json')).dependencies,
  };
  const pinned: Record<string, string> = {};
  for (const name of Object.keys(declared).sort()) {
    if (name.startsWith(WORKSPACE_SCOPE)) continue;
    const version = lock.packages[`node_modules/${name}`]?.version;
    if (!version) throw new Error(`${name} is not installed at the top of the lock: run npm ci`);
    pinned[name] = version;
  }
  return pinned;
}

/** The lock entries reachable from `dependencies`, keyed as in the repository's lock. */
export function lockSlice(lock: Lockfile, dependencies: Record<string, string>): Record<string, LockEntry> {
  const slice: Record<string, LockEntry> = {};
  const pending: Array<[string, string, boolean]> = Object.keys(dependencies).map((name) => ['', name, true]);
  while (pending.length > 0) {
    const [from, name, required] = pending.pop()!;
    const location = resolveIn(lock, from, name);
    if (!location) {
      if (required) throw new Error(`the lock has no ${name} reachable from ${from || 'the root'}`);
      continue;
    }
    if (slice[location]) continue;
    const { dev: _dev, devOptional, ...entry } = lock.packages[location]!;
    if (entry.link) throw new Error(`${name} is a workspace link; the archive compiles workspaces in`);
    slice[location] = devOptional ? { ...entry, optional: true } : entry;
    const optionalPeers = entry.peerDependenciesMeta ?? {};
    for (const dep of Object.keys(entry.dependencies ?? {})) pending.push([location, dep, true]);
    for (const dep of Object.keys(entry.optionalDependencies ?? {})) pending.push([location, dep, false]);
    for (const dep of Object.keys(entry.peerDependencies ?? {}))
      pending.push([location, dep, !optionalPeers[dep]?.optional]);
  }
  return Object.fromEntries(Object.entries(slice).sort(([a], [b]) => a.localeCompare(b)));
}

/** shared/core's "imports", conditions kept, with each target as compiled into the archive. */
export function archiveImports(): Record<string, unknown> {
  const compiled = (entry: unknown): unknown =>
    typeof entry === 'string'
      ? `./${posix.join('shared/core', entry).replace(/\.ts$/, '.js')}`
      : Object.fromEntries(
          Object.entries(entry as Record<string, unknown>).map(([key, value]) => [key, compiled(value)]),
        );
  const core = readJson<PackageJson & { imports?: Record<string, unknown> }>(
    join(ROOT, 'shared/core/package.json'),
  );
  return Object.fromEntries(
    Object.entries(core.imports ?? {}).map(([name, entry]) => [name, compiled(entry)]),
  );
}

export function buildArchive(out: string): { dependencies: Record<string, string>; packages: number } {
  rmSync(out, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  mkdirSync(join(out, 'infra'), { recursive: true });
  copyFileSync(join(ROOT, 'infra/catalog.json'), join(out, 'infra/catalog.json'));

  const functions = readJson<PackageJson>(join(ROOT, 'functions/package.json'));
  const dependencies = archiveDependencies();
  const manifest = {
    name: `${functions.name.replace(WORKSPACE_SCOPE, 'clinic-bridge-')}-archive`,
    version: functions.version,
    private: true,
    license: functions.license,
    type: 'module',
    // Every deployed function loads this one entry and serves the target named by its own name.
    main: 'functions/index.js',
    engines: functions.engines,
    dependencies,
    // shared/core picks its platform through package.json "imports" (#platform, #seal-engine);
    // the archive has one package.json, so its entries move there, pointing at the compiled files.
    imports: archiveImports(),
  };
  const lock = readJson<Lockfile>(join(ROOT, 'package-lock.json'));
  const packages = lockSlice(lock, dependencies);
  const { name, version, license, engines } = manifest;
  const lockfile = {
    name,
    version,
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name, version, license, dependencies, engines }, ...packages },
  };
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(out, 'package-lock.json'), `${JSON.stringify(lockfile, null, 2)}\n`);
  return { dependencies, packages: Object.keys(packages).length };
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'dist') } } });
  const out = resolve(values.out!);
  mkdirSync(dirname(out), { recursive: true });
  const { dependencies, packages } = buildArchive(out);
  process.stderr.write(
    `deploy archive in ${out}: ${Object.keys(dependencies).length} dependencies ` +
      `(${Object.keys(dependencies).join(', ')}), ${packages} packages locked\n`,
  );
}
