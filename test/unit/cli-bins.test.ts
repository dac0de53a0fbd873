// The installed bins: each runs through its shebang (with the Node flags the npm scripts use),
// prints the package version, and refuses bad usage with exit code 2 before touching any state
// or service. A limit the CLI checks is the service's own (MAX_PAGE_SIZE from the API schema).
import { execFile, execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLIENT_NODE_FLAGS } from '../../clients/lib/cli.ts';
import clientsPackage from '../../clients/package.json' with { type: 'json' };
import { MAX_PAGE_SIZE } from '../../shared/core/protocol/index.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN_DIR = join(ROOT, 'node_modules', '.bin');
const BINS = ['cb-admin', 'cb-connector', 'cb-device'] as const;
const exec = promisify(execFile);

/** Runs an installed bin by its own path, as a shell would: the kernel reads the shebang. */
async function installed(name: string, args: readonly string[]) {
  // The project's Node 22 first on PATH, as `npm ci` (or an installed client) provides it.
  const env = { ...process.env, PATH: `${BIN_DIR}${delimiter}${process.env.PATH ?? ''}`, CB_STACK_ENV: '' };
  try {
    const { stdout, stderr } = await exec(join(BIN_DIR, name), [...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('the installed bins', { timeout: 60_000 }, () => {
  it('start with a shebang carrying the npm scripts’ Node flags, and are executable in git', async () => {
    const modes = execFileSync('git', ['ls-files', '-s', ...BINS.map((name) => `clients/${name}.ts`)], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    for (const name of BINS) {
      expect(clientsPackage.bin[name]).toBe(`${name}.ts`);
      const first = (await readFile(join(ROOT, 'clients', `${name}.ts`), 'utf8')).split('\n')[0];
      expect(first).toBe(`#!/usr/bin/env -S node ${CLIENT_NODE_FLAGS.join(' ')}`);
      expect(modes).toMatch(new RegExp(`^100755 [0-9a-f]+ 0\\tclients/${name}\\.ts$`, 'm'));
    }
  });

  it('print the package version, and help with exit 0', async () => {
    for (const name of BINS) {
      const version = await installed(name, ['--version']);
      expect(version, name).toMatchObject({ code: 0, stdout: `${clientsPackage.version}\n` });
    }
    const help = await installed('cb-device', ['access-log', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: cb-device access-log [options]');
    expect(help.stdout).toContain(`1..${MAX_PAGE_SIZE}`);
  });

  it('refuse bad usage with exit 2 and a did-you-mean, before any state or service is touched', async () => {
    const typo = await installed('cb-connector', ['sned', 'letter.pdf']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("cb-connector: unknown command 'sned'");
    expect(typo.stderr).toContain('Did you mean send?');
    expect(typo.stdout).toBe('');
    const bare = await installed('cb-admin', []);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe(''); // the help goes to stderr: stdout stays for data
    expect(bare.stderr).toContain('Usage: cb-admin');
    // The service's page limit, not one of the CLI's own: 200 used to pass here and fail there.
    const tooMany = await installed('cb-device', [
      'access-log',
      '--limit',
      String(MAX_PAGE_SIZE + 1),
      '--home',
      '/nonexistent',
    ]);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toBe(`cb-device: --limit must be a whole number from 1 to ${MAX_PAGE_SIZE}\n`);
    const sync = await installed('cb-device', ['sync', '--wait', '3601']);
    expect(sync.code).toBe(2);
    expect(sync.stderr).toContain('must be a whole number from 0 to 3600');
    const both = await installed('cb-device', ['revoke', '--self', '--', '-x']);
    expect(both.code).toBe(2);
  });

  it('have every command README.md names, in its prose and in its shell blocks', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const named = new Map<string, Set<string>>(BINS.map((name) => [name, new Set<string>()]));
    for (const [, bin, command] of readme.matchAll(
      /\b(cb-admin|cb-connector|cb-device)(?: --[a-z-]+ \S+)* ([a-z][a-z-]+)/g,
    )) {
      named.get(bin!)!.add(command!);
    }
    expect(named.get('cb-connector')!.size).toBeGreaterThan(5); // the walk-through was found
    for (const [bin, commands] of named) {
      const help = await installed(bin, ['--help']);
      const listed = new Set([...help.stdout.matchAll(/^ {2}([a-z][a-z-]+)/gm)].map((match) => match[1]));
      for (const command of commands) expect(listed.has(command), `${bin} ${command}`).toBe(true);
    }
  });
});
