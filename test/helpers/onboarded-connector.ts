// A local stack with a connector onboarded through the real bins, as hospital ICT and the
// operator do it (README's client walk-through): `cb-connector keys`, `cb-admin
// register-hospital --json`, `cb-connector configure`. Tests that drive the clients start here.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { binRunner, writeStackEnvFile, type BinName, type BinOutcome } from './bins.ts';

export interface OnboardedConnector {
  readonly dir: string;
  readonly stack: Stack;
  /** The connector's --home. */
  readonly home: string;
  /** The public key the operator registered. */
  readonly publicKey: string;
  bin(name: BinName, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<BinOutcome>;
  /** `cb-connector … --home <home>`, with `env` (e.g. the HSM's) on every call. */
  connector(...args: string[]): Promise<BinOutcome>;
  close(): Promise<void>;
}

export async function onboardConnector(options: {
  readonly hospitalId: string;
  /** What the connector's every call needs in its environment (CB_HSM_PIN, SOFTHSM2_CONF). */
  readonly env?: NodeJS.ProcessEnv;
  /** Extra `cb-connector keys` arguments (a PKCS#11 custody, say). */
  readonly keyArgs?: readonly string[];
  /** Called with the temporary folder before the stack starts (a token to initialise). */
  readonly prepare?: (dir: string) => Promise<NodeJS.ProcessEnv | void>;
}): Promise<OnboardedConnector> {
  const dir = await mkdtemp(join(tmpdir(), `cb-${options.hospitalId}-`));
  const prepared = (await options.prepare?.(dir)) ?? {};
  const env = { ...options.env, ...prepared };
  const stack = await startStack({ dataDir: join(dir, 'stack'), portBase: 0 });
  const envFile = await writeStackEnvFile(stack, dir);
  const home = join(dir, 'connector');
  const bin = (name: BinName, args: readonly string[], extra: NodeJS.ProcessEnv = {}) =>
    binRunner(envFile, extra)(name, args);
  const connector = (...args: string[]) => bin('cb-connector', ['--home', home, ...args], env);
  const fail = (step: string, outcome: BinOutcome) =>
    new Error(`${step} exited ${outcome.code}: ${outcome.stderr.slice(-500)}`);

  const keys = await connector('keys', '--hospital', options.hospitalId, ...(options.keyArgs ?? []));
  if (keys.code !== 0) throw fail('cb-connector keys', keys);
  const publicKey = keys.stdout.trim();
  const registered = await bin('cb-admin', [
    'register-hospital',
    '--id',
    options.hospitalId,
    '--public-key',
    publicKey,
    '--json',
  ]);
  if (registered.code !== 0) throw fail('cb-admin register-hospital', registered);
  await writeFile(join(dir, 'onboarding.json'), registered.stdout);
  const configured = await connector('configure', '--from', join(dir, 'onboarding.json'));
  if (configured.code !== 0) throw fail('cb-connector configure', configured);

  return {
    dir,
    stack,
    home,
    publicKey,
    bin,
    connector,
    async close() {
      await stack.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
