// Runs the client bins (cb-admin, cb-connector, cb-device) as their own processes against a
// stack, the way an operator, a hospital and a patient would: through the env file `npm start`
// writes, with exit codes and output captured for the test to check.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import type { StackEnv } from './delivery-fixture.ts';

const run = promisify(execFile);

export type BinName = 'cb-admin' | 'cb-connector' | 'cb-device';

export interface BinOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The JSON a `--json` command printed, after checking it succeeded (its stderr says why not). */
export function jsonOutput<T>(outcome: BinOutcome): T {
  expect(outcome.code, outcome.stderr).toBe(0);
  return JSON.parse(outcome.stdout) as T;
}

/** Writes the stack's environment where the bins read it; returns the file's path. */
export async function writeStackEnvFile(stack: StackEnv, dir: string): Promise<string> {
  const file = join(dir, 'stack.env');
  await writeFile(
    file,
    Object.entries(stack.env)
      .map(([name, value]) => `${name}=${value}\n`)
      .join(''),
  );
  return file;
}

/** Runs a bin against the stack in `envFile`; `extraEnv` adds to (never replaces) the environment. */
export function binRunner(
  envFile: string,
  extraEnv: NodeJS.ProcessEnv = {},
): (name: BinName, args: readonly string[]) => Promise<BinOutcome> {
  return async (name, args) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [`clients/${name}.ts`, ...args], {
        env: { ...process.env, ...extraEnv, CB_STACK_ENV: envFile },
        maxBuffer: 16 * 1024 * 1024,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };
}
