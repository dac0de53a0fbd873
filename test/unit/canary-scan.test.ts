// The canary scanner the security tests rely on must itself be able to fail: it finds the
// canary raw, in UTF-16, hex and base64/base64url at any alignment, across its read-window
// boundary, and reports nothing for clean files.
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesContainingCanary, textContainsCanary } from '../helpers/canary.ts';

const CANARY = 'CANARY-7f3a9c-plaintext-must-not-leak';

describe('canary scanner', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-canary-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds every encoding at every alignment, and nothing in clean files', async () => {
    const noise = (n: number) => randomBytes(n).toString('hex').replace(/[0-9]/g, 'x'); // no canary-like runs
    const encodings: Record<string, (prefix: string) => string> = {
      utf8: (prefix) => prefix + CANARY,
      hex: (prefix) => prefix + Buffer.from(CANARY).toString('hex'),
    };
    for (let shift = 0; shift < 3; shift++) {
      for (const alphabet of ['base64', 'base64url'] as const) {
        encodings[`${alphabet}-${shift}`] = () =>
          Buffer.concat([randomBytes(shift), Buffer.from(`${CANARY}!`), randomBytes(5)]).toString(alphabet);
      }
    }
    await mkdir(join(dir, 'nested'), { recursive: true });
    for (const [name, encode] of Object.entries(encodings)) {
      await writeFile(join(dir, 'nested', `${name}.txt`), `${noise(37)}${encode(noise(3))}${noise(11)}`);
    }
    await writeFile(join(dir, 'utf16.bin'), Buffer.concat([randomBytes(7), Buffer.from(CANARY, 'utf16le')]));
    // Straddling the 1 MiB read window.
    const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
    big.write(CANARY, 1024 * 1024 - 10, 'utf8');
    await writeFile(join(dir, 'straddle.bin'), big);
    await writeFile(join(dir, 'clean.bin'), randomBytes(3 * 1024 * 1024));

    const hits = (await filesContainingCanary(dir, CANARY)).map((path) => path.slice(dir.length + 1)).sort();
    expect(hits).toEqual(
      [...Object.keys(encodings).map((name) => `nested/${name}.txt`), 'straddle.bin', 'utf16.bin'].sort(),
    );
  });

  it('checks captured text', () => {
    expect(
      textContainsCanary(`{"message":"x","data":"${Buffer.from(CANARY).toString('base64')}"}`, CANARY),
    ).toBe(true);
    expect(textContainsCanary('{"message":"request handled"}', CANARY)).toBe(false);
  });
});
