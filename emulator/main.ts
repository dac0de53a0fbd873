// `npm start`: runs the local stack in the foreground until Ctrl-C.
// stdout carries only the NAME=value environment and then `ready`, so a script can read
// it; everything meant for people goes to stderr.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { STACK_ENV_FILE } from '../shared/emulation.ts';
import { FirestoreUnavailableError } from './firestore/server.ts';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_PORT_BASE,
  DEFAULT_PROJECT_ID,
  resetData,
  resolveExposure,
  StackOptionsError,
  startStack,
} from './stack.ts';

const USAGE = `Usage: npm start -- [options]
       npm run reset            delete the local data directory

Runs Firestore (official emulator), Cloud Storage, Cloud KMS and FCM emulators and the
functions host on 127.0.0.1. Prints NAME=value lines for clients, then "ready".

Options:
  --host ADDR          where the services a phone uses (functions, FCM recorder) listen:
                       127.0.0.1 (default), or 0.0.0.0 to serve phones on the local network
                       as a development stack (plain http; docs/SANDBOX.md). Firestore,
                       Storage and KMS stay on 127.0.0.1.
  --advertise IP       the private IPv4 address phones reach (default: this machine's first)
  --reset              wipe the data directory before starting
  --data-dir DIR       where state lives (default ${DEFAULT_DATA_DIR})
  --project ID         project id (default ${DEFAULT_PROJECT_ID})
  --port-base N        first of five consecutive ports (default ${DEFAULT_PORT_BASE}; 0 = any free ports)
  --verbose            print every emulator log line to stderr
  -h, --help           show this help`;

async function main(): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      allowPositionals: true,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        advertise: { type: 'string' },
        reset: { type: 'boolean', default: false },
        'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
        project: { type: 'string', default: DEFAULT_PROJECT_ID },
        'port-base': { type: 'string', default: String(DEFAULT_PORT_BASE) },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.error(USAGE);
    return 0;
  }
  if (positionals[0] === 'reset') {
    await resetData(values['data-dir']);
    console.error(`Deleted ${values['data-dir']}.`);
    return 0;
  }
  if (positionals.length > 0) {
    console.error(`Unknown command "${positionals[0]}".\n\n${USAGE}`);
    return 2;
  }
  const portBase = Number(values['port-base']);
  if (!Number.isInteger(portBase) || portBase < 0 || portBase > 65_530) {
    console.error(`--port-base must be 0 or a port number, not "${values['port-base']}".`);
    return 2;
  }

  let exposure;
  try {
    exposure = resolveExposure(values.host, values.advertise);
  } catch (error) {
    if (!(error instanceof StackOptionsError)) throw error;
    console.error(error.message);
    return 2;
  }

  const verbose = values.verbose;
  const log = (entry: Record<string, unknown>) => {
    if (verbose || entry.severity === 'WARNING' || entry.severity === 'ERROR')
      console.error(JSON.stringify(entry));
  };
  const startedAt = performance.now();
  console.error(`Starting the local stack (data in ${values['data-dir']})...`);
  let stack;
  try {
    stack = await startStack({
      dataDir: values['data-dir'],
      projectId: values.project,
      portBase,
      host: exposure.bind,
      advertise: exposure.advertised,
      reset: values.reset,
      log,
    });
  } catch (error) {
    if (error instanceof FirestoreUnavailableError) console.error(error.message);
    else console.error(`The stack failed to start: ${(error as Error).stack ?? error}`);
    return 1;
  }

  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      console.error(`\n${signal}: stopping (saving Firestore data)...`);
      await stack.close();
      console.error('Stopped.');
    })();
    return stopping;
  };
  const finished = new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => void stop(signal).then(resolve));
    }
  });

  const envText = Object.entries(stack.env)
    .map(([name, value]) => `${name}=${value}\n`)
    .join('');
  // The clients (cb-admin, cb-connector, cb-device) read this file by default.
  await writeFile(join(values['data-dir'], STACK_ENV_FILE), envText);
  process.stdout.write(envText);
  process.stdout.write('ready\n');
  console.error(
    `Ready in ${((performance.now() - startedAt) / 1000).toFixed(1)} s. Functions: ${stack.functions.functions
      .map((fn) => fn.url)
      .join(', ')}. Press Ctrl-C to stop.`,
  );
  if (exposure.basePath) {
    console.error(
      `DEVELOPMENT STACK: phones on this network reach the API at ${stack.env.FUNCTIONS_BASE_URL} and ` +
        `their pushes at ${stack.env.FCM_EMULATOR_URL}, over plain http. Only a device built with ` +
        `allowDevelopmentStack pairs with it (docs/SANDBOX.md). Never put patient data here.`,
    );
  }
  await finished;
  return 0;
}

process.exitCode = await main();
