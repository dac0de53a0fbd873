// Runs `npm start` (emulator/main.ts) as a child process and reads its NAME=value lines up to
// `ready`, as a script or a newcomer would. Tests use it to prove the CLI's promises and the
// benchmarks to time start-up.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface StackProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** The environment the stack printed before `ready`. */
  readonly env: Readonly<Record<string, string>>;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Ctrl-C, then the exit code once it has stopped. */
  stop(): Promise<number | null>;
}

/**
 * A small young generation, as `npm start` uses: the functions host hands 1 MiB chunks through
 * the Storage emulator in the same process, and with V8's default semi-space a 1 GiB delivery
 * peaked at 275 MiB; with this, 223 MiB (docs/PERFORMANCE.md).
 */
export const STACK_NODE_FLAGS = ['--max-semi-space-size=2'] as const;

export async function spawnStack(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<StackProcess> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const child = spawn(process.execPath, [...STACK_NODE_FLAGS, 'emulator/main.ts', ...args], {
    cwd: ROOT,
    env: options.env ?? process.env,
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const env: Record<string, string> = {};
  const lines = createInterface({ input: child.stdout });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "ready" within ${timeoutMs} ms:\n${stderr}`)),
        timeoutMs,
      );
      void exited.then((code) => reject(new Error(`stack exited with ${code} before ready:\n${stderr}`)));
      lines.on('line', (line) => {
        if (line === 'ready') {
          clearTimeout(timer);
          return resolve();
        }
        const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
        if (!match) return reject(new Error(`unexpected stdout line: ${line}`));
        env[match[1]!] = match[2]!;
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    child,
    env,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      return exited;
    },
  };
}
