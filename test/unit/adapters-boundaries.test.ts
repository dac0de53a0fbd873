// Production-side code (functions/, shared/) must never import the local emulators: the FCM
// client agent moved into shared/adapters for that reason.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await tsFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('adapter boundaries', () => {
  it('nothing in shared/ or functions/ imports from emulator/', async () => {
    const offenders: string[] = [];
    for (const file of [
      ...(await tsFiles(join(ROOT, 'shared'))),
      ...(await tsFiles(join(ROOT, 'functions'))),
    ]) {
      const source = await readFile(file, 'utf8');
      if (/(?:from\s+|import\s*\(\s*)['"][^'"]*\bemulator\//.test(source))
        offenders.push(relative(ROOT, file));
    }
    expect(offenders).toEqual([]);
  });

  it('ports import no adapter, client library or emulator (types from shared/core/crypto only)', async () => {
    for (const file of await tsFiles(join(ROOT, 'shared', 'ports'))) {
      const source = await readFile(file, 'utf8');
      const imports = [...source.matchAll(/from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!);
      for (const specifier of imports) {
        expect(specifier, relative(ROOT, file)).toMatch(/^\.\.\/core\/crypto\/index\.ts$|^\.\/[a-z-]+\.ts$/);
      }
    }
  });
});
