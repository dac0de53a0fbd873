// Where the clients find the cloud they talk to. On Google Cloud that is the real endpoints and
// Application Default Credentials; locally it is the NAME=value environment `npm start` prints
// and writes to .data/stack.env. Precedence: --env FILE, then $CB_STACK_ENV, then
// .data/stack.env if it exists, then the process environment alone.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STACK_ENV_FILE } from '../../shared/emulation.ts';
import { UsageError } from './cli.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_STACK_ENV = join(REPO_ROOT, '.data', STACK_ENV_FILE);

/** Parses NAME=value lines; blank lines and # comments are skipped, anything else is an error. */
export function parseEnvText(text: string, source: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line === 'ready') continue;
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!match) throw new UsageError(`${source}:${index + 1}: expected NAME=value`);
    env[match[1]!] = match[2]!;
  }
  return env;
}

export interface ClientEnvironment {
  /** Merged: the file's values over the process environment. */
  readonly env: Readonly<Record<string, string>>;
  /** The file the values came from, if any (for messages). */
  readonly source: string | undefined;
}

export function loadClientEnvironment(envFile?: string): ClientEnvironment {
  const path =
    envFile ?? process.env.CB_STACK_ENV ?? (existsSync(DEFAULT_STACK_ENV) ? DEFAULT_STACK_ENV : undefined);
  const base: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined) base[name] = value;
  if (path === undefined) return { env: base, source: undefined };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read the stack environment ${path} (is \`npm start\` running?)`);
  }
  const fromFile = parseEnvText(text, path);
  // Google's libraries also read some of these (METADATA_SERVER_DETECTION, emulator hosts)
  // straight from the process environment.
  Object.assign(process.env, fromFile);
  return { env: { ...base, ...fromFile }, source: path };
}

/** A required variable, with a message that says where it should have come from. */
export function requireEnv(environment: ClientEnvironment, name: string): string {
  const value = environment.env[name];
  if (value === undefined || value === '') {
    const where =
      environment.source ?? 'the environment (start the stack with `npm start`, or pass --env FILE)';
    throw new UsageError(`${name} is not set in ${where}`);
  }
  return value;
}
