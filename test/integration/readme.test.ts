// README.md's client walk-through, run the way a newcomer runs it: the stack started with
// `npm start` (with its documented --data-dir and --port-base, so the test owns its state and
// ports), and then every line of the walk-through's shell block, exactly as written, one after
// the other in one bash session, in a fresh folder that has only the project's node_modules. A
// line that fails, a `--json` line whose stdout is not one JSON document, or a secret written
// where git would pick it up, fails the test: the README cannot drift from what the clients do.
import {
  execFileSync,
  spawn,
  spawnSync,
  type ChildProcess,
  type ChildProcessWithoutNullStreams,
} from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceIdSchema, recordIdSchema } from '../../shared/core/protocol/index.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MARKER = '<!-- readme-walkthrough';

/** The lines of the shell block that follows the walk-through marker (blank lines dropped). */
export function walkthroughLines(readme: string): string[] {
  const at = readme.indexOf(MARKER);
  if (at < 0) throw new Error('README.md has no walk-through marker');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error('no ```sh block after the walk-through marker');
  return block[1]!.split('\n').filter((line) => line.trim() !== '');
}

interface LineOutcome {
  readonly line: string;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * One bash session fed line by line (variables and exports carry over, as in a terminal). Each
 * line's stdout and stderr go to files outside the working folder, and a sentinel on the
 * session's own stdout says the line finished and with which exit code.
 */
class ShellSession {
  private readonly bash: ChildProcessWithoutNullStreams;
  private readonly captureDir: string;
  private buffered = '';
  private count = 0;

  constructor(cwd: string, env: NodeJS.ProcessEnv, captureDir: string) {
    this.captureDir = captureDir;
    this.bash = spawn('bash', ['--noprofile', '--norc'], { cwd, env, detached: true });
    this.bash.stdout.setEncoding('utf8');
    this.bash.stdout.on('data', (chunk: string) => (this.buffered += chunk));
  }

  async run(line: string, timeoutMs: number): Promise<LineOutcome> {
    const n = this.count++;
    const out = join(this.captureDir, `${n}.out`);
    const err = join(this.captureDir, `${n}.err`);
    // The line alone in a brace group: no subshell, so `x=$(…)` and `export` persist; stdin is
    // closed so that no command can read the session's script.
    this.bash.stdin.write(`{ ${line}\n} </dev/null >'${out}' 2>'${err}'; echo "__line_${n}_exit $?"\n`);
    const sentinel = new RegExp(`__line_${n}_exit (\\d+)\\n`);
    const deadline = Date.now() + timeoutMs;
    let match = sentinel.exec(this.buffered);
    while (!match) {
      if (Date.now() > deadline || this.bash.exitCode !== null) {
        throw new Error(`\`${line}\` did not finish within ${timeoutMs / 1000} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      match = sentinel.exec(this.buffered);
    }
    this.buffered = this.buffered.slice(match.index + match[0].length);
    return {
      line,
      code: Number(match[1]),
      stdout: await readFile(out, 'utf8'),
      stderr: await readFile(err, 'utf8'),
    };
  }

  close(): void {
    this.bash.stdin.end();
    try {
      process.kill(-this.bash.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** `npm start` with the README's options; resolves with the env file once it printed `ready`. */
async function startStackAsReadmeSays(dataDir: string): Promise<{ child: ChildProcess; envFile: string }> {
  const child = spawn('npm', ['start', '--', '--data-dir', dataDir, '--port-base', '0'], {
    cwd: ROOT,
    env: process.env,
    // Its own process group: stopping it stops npm and the stack together.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const deadline = Date.now() + 110_000;
  while (!/^ready$/m.test(stdout)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`npm start did not become ready: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, envFile: join(dataDir, 'stack.env') };
}

/** Whether any process of the group `pgid` is still running. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops `npm start` as Ctrl-C would, and waits until every process of its group has exited: npm
 * may exit before the stack has finished stopping (and stopped its Firestore JVM).
 */
async function stopStack(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || !groupAlive(child.pid)) return;
  process.kill(-child.pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (groupAlive(child.pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (groupAlive(child.pid)) process.kill(-child.pid, 'SIGKILL');
}

describe("README's client walk-through", { timeout: 600_000 }, () => {
  let dir: string;
  let work: string;
  let stack: ChildProcess | undefined;
  let envFile: string;
  let shell: ShellSession | undefined;
  const outcomes: LineOutcome[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-readme-'));
    ({ child: stack, envFile } = await startStackAsReadmeSays(join(dir, 'stack')));
  });

  afterAll(async () => {
    shell?.close();
    await stopStack(stack);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs every line as written, each exiting 0, with --json output that parses', async () => {
    const lines = walkthroughLines(await readFile(join(ROOT, 'README.md'), 'utf8'));
    expect(lines.length).toBeGreaterThan(15);
    // A fresh folder with only what `npm ci` gives a clone: the README's first line finds the bins there.
    work = join(dir, 'work');
    const captures = join(dir, 'captures');
    await mkdir(work);
    await mkdir(captures);
    await symlink(join(ROOT, 'node_modules'), join(work, 'node_modules'));
    const env: NodeJS.ProcessEnv = { ...process.env };
    // The stack this test started, where `npm start` in the repository would write .data/stack.env.
    env.CB_STACK_ENV = envFile;
    for (const name of ['CB_CONNECTOR_HOME', 'CB_DEVICE_HOME', 'CB_OPERATOR', 'CB_DEBUG']) delete env[name];
    // A newcomer's PATH: the project's bins are not on it until the README's first line.
    env.PATH = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((entry) => !entry.includes('node_modules'))
      .join(delimiter);
    shell = new ShellSession(work, env, captures);

    for (const line of lines) {
      const outcome = await shell.run(line, 180_000);
      outcomes.push(outcome);
      expect(outcome.code, `\`${line}\` exited ${outcome.code}:\n${outcome.stderr.slice(-1500)}`).toBe(0);
      // `--json` promises one JSON document on stdout (unless the line redirects it elsewhere).
      if (/\s--json(\s|$)/.test(line) && !line.includes('>')) {
        expect(
          () => JSON.parse(outcome.stdout),
          `\`${line}\` printed no JSON:\n${outcome.stdout}`,
        ).not.toThrow();
      }
    }
  });

  it('left what each step promises: the ids recall and revoke took, the record received, secrets owner-only and git-ignored', async () => {
    expect(outcomes.length).toBeGreaterThan(15); // the walk-through ran
    const values = await shell!.run('printf "%s\\n" "$key" "$record" "$lost"', 5000);
    const [key, record, lost] = values.stdout.trim().split('\n');
    expect(key).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(recordIdSchema.safeParse(record).success, record).toBe(true);
    expect(deviceIdSchema.safeParse(lost).success, lost).toBe(true);
    const recall = outcomes.find((o) => o.line.startsWith('cb-connector recall'))!;
    expect(recall.stdout).toContain(`Recalled ${record}`);
    const revoke = outcomes.find((o) => o.line.startsWith('cb-connector revoke'))!;
    expect(revoke.stdout).toContain(`Revoked ${lost}`);
    const receipts = JSON.parse(outcomes.find((o) => o.line.startsWith('cb-connector receipts'))!.stdout) as {
      uploads: { recordId: string; status: string }[];
    };
    expect(receipts.uploads).toContainEqual(
      expect.objectContaining({ recordId: record, status: 'accepted' }),
    );
    expect(await readFile(join(work, '.device', 'records', 'letter.txt'), 'utf8')).toBe('Discharge letter\n');

    // The QR code is a secret: never drawn into a pipe, its PNG and the onboarding file owner-only.
    const invite = outcomes.find((o) => o.line.startsWith('cb-connector invite'))!;
    expect(invite.stdout).not.toMatch(/[█▀▄]/);
    expect(invite.stderr).toContain('drawn only on a terminal');
    // On a terminal (a pseudo-terminal from util-linux `script`) it is drawn.
    const onTerminal = await shell!.run(
      "script -qec 'cb-connector invite 123456789 --out .connector/invite-3.png' /dev/null",
      60_000,
    );
    expect(onTerminal.code, onTerminal.stderr).toBe(0);
    // A QR code is at least 21 modules square, two rows to a line of half blocks; a run of
    // blocks is no test (a random code may break every run with a light module).
    const drawnLines = onTerminal.stdout
      .split('\n')
      .filter((line) => (line.match(/[█▀▄]/g) ?? []).length >= 10);
    expect(drawnLines.length).toBeGreaterThanOrEqual(11);
    for (const file of [
      '.connector/invite.png',
      '.connector/invite-2.png',
      '.connector/invite-3.png',
      'onboarding.json',
    ]) {
      expect(((await stat(join(work, file))).mode & 0o777).toString(8), file).toBe('600');
    }
    // Run in the repository root, none of them would be committed by `git add .`.
    const secrets = [
      'onboarding.json',
      '.connector/invite.png',
      'invite.png',
      '.device/records/letter.txt',
      '.device-2/x',
    ];
    const ignored = execFileSync('git', ['check-ignore', '--no-index', ...secrets], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(ignored.trim().split('\n')).toEqual(secrets);
  });

  it('documents the stack’s options that it uses above (`npm start -- --help`, run as written)', () => {
    const run = spawnSync('bash', ['-c', 'npm start -- --help'], { cwd: ROOT, encoding: 'utf8' });
    expect(run.status).toBe(0);
    const help = run.stdout + run.stderr; // main.ts prints its help on stderr: stdout is for the environment
    expect(help).toContain('--data-dir');
    expect(help).toContain('--port-base');
  });
});
