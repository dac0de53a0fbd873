// The connector's packaging (packaging/): the systemd units and the container image definition.
// There is no container engine here, so what can be checked without one is checked: the units'
// hardening, that what they and the Containerfile run names files and commands that exist, that
// the runtime stage's file set is enough to run the connector (assembled in a temporary
// directory as the COPY lines say, then run), and the image's health probe against the real
// console. Where systemd-analyze is installed, the units also pass `verify` and its offline
// security review; the static checks run everywhere.
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addStaff, DEFAULT_CONSOLE_PORT, serveConsole } from '../../clients/connector/console/index.ts';
import { CLIENT_NODE_FLAGS } from '../../clients/lib/cli.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL_DIR = '/opt/clinic-bridge';
const UNITS = ['cb-connector.service', 'cb-connector-console.service'] as const;
const run = promisify(execFile);

type Unit = Map<string, Map<string, string[]>>;

/** A unit file's sections and directives (a directive may repeat; '\' continues a line). */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(trimmed);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const at = trimmed.indexOf('=');
    expect(at, `not a directive: ${trimmed}`).toBeGreaterThan(0);
    expect(section, `directive outside a section: ${trimmed}`).toBeDefined();
    const key = trimmed.slice(0, at);
    section!.set(key, [...(section!.get(key) ?? []), trimmed.slice(at + 1)]);
  }
  return unit;
}

const readUnit = (name: string) => readFileSync(join(ROOT, 'packaging/systemd', name), 'utf8');
const service = (name: string) => parseUnit(readUnit(name)).get('Service')!;
const one = (section: Map<string, string[]>, key: string) => section.get(key)?.at(-1);

/** The install path of a file in the repository, and back. */
const inRepo = (installed: string) => {
  expect(installed.startsWith(`${INSTALL_DIR}/`), installed).toBe(true);
  return join(ROOT, installed.slice(INSTALL_DIR.length + 1));
};

/** The connector's subcommands, as clients/cb-connector.ts and the modules it registers declare them. */
function declaredCommands(): Set<string> {
  const files = [
    'clients/cb-connector.ts',
    'clients/connector/console/commands.ts',
    'clients/connector/backup-commands.ts',
  ];
  const source = files.map((file) => readFileSync(join(ROOT, file), 'utf8')).join('\n');
  return new Set([...source.matchAll(/\.command\('([a-z-]+)'\)/g)].map((match) => match[1]!));
}

describe('the systemd units', () => {
  for (const name of UNITS) {
    describe(name, () => {
      const section = service(name);

      it('run as a dedicated unprivileged user with the hardening directives', () => {
        expect(one(section, 'User')).toBe('cb-connector');
        expect(one(section, 'Group')).toBe('cb-connector');
        const required: Record<string, string> = {
          NoNewPrivileges: 'yes',
          ProtectSystem: 'strict',
          ProtectHome: 'yes',
          PrivateTmp: 'yes',
          PrivateDevices: 'yes',
          ProtectKernelTunables: 'yes',
          ProtectKernelModules: 'yes',
          ProtectControlGroups: 'yes',
          RestrictSUIDSGID: 'yes',
          RestrictNamespaces: 'yes',
          LockPersonality: 'yes',
          SystemCallArchitectures: 'native',
          CapabilityBoundingSet: '',
          AmbientCapabilities: '',
          UMask: '0077',
          StateDirectoryMode: '0700',
          LimitCORE: '0',
          Restart: 'on-failure',
        };
        for (const [key, value] of Object.entries(required)) expect(one(section, key), key).toBe(value);
        expect(section.get('EnvironmentFile')).toEqual(['/etc/clinic-bridge/connector.env']);
        for (const forbidden of ['PermissionsStartOnly', 'DynamicUser'])
          expect(section.has(forbidden)).toBe(false);
        expect(one(section, 'User')).not.toBe('root');
      });

      it('run Node 22 with the bin’s own flags on a script that exists', () => {
        const exec = section.get('ExecStart')!;
        expect(exec).toHaveLength(1);
        const [node, ...args] = exec[0]!.split(/\s+/);
        expect(node).toMatch(/^\/.*\/node$/);
        expect(args.slice(0, CLIENT_NODE_FLAGS.length)).toEqual([...CLIENT_NODE_FLAGS]);
        const script = args[CLIENT_NODE_FLAGS.length]!;
        expect(script).toBe(`${INSTALL_DIR}/clients/cb-connector.ts`);
        expect(existsSync(inRepo(script))).toBe(true);
      });

      it('can write only the connector home (and the watch its drop folder), which is the home it uses', () => {
        const home = section
          .get('Environment')!
          .find((value) => value.startsWith('CB_CONNECTOR_HOME='))!
          .split('=')[1]!;
        expect(home).toBe('/var/lib/clinic-bridge/connector');
        expect(one(section, 'StateDirectory')).toBe(home.replace('/var/lib/', ''));
        const writable = section.get('ReadWritePaths')!.flatMap((value) => value.split(/\s+/));
        expect(writable).toContain(home);
        const args = section.get('ExecStart')![0]!.split(/\s+/);
        const command = args[args.indexOf(`${INSTALL_DIR}/clients/cb-connector.ts`) + 1];
        if (command === 'watch') {
          const drop = args.at(-1)!;
          expect(writable.sort()).toEqual([home, drop].sort());
        } else {
          expect(writable).toEqual([home]);
        }
      });
    });
  }

  it('run `watch` (a command of cb-connector.ts) and `console` (the command docs/CONSOLE.md documents)', () => {
    const command = (name: string) => {
      const args = one(service(name), 'ExecStart')!.split(/\s+/);
      return args.slice(args.indexOf(`${INSTALL_DIR}/clients/cb-connector.ts`) + 1);
    };
    expect(command('cb-connector.service')).toEqual(['watch', '/srv/clinic-bridge/drop']);
    expect(declaredCommands()).toContain('watch');
    expect(declaredCommands()).toContain('console');
    // The unit agrees with docs/CONSOLE.md (command, default loopback port).
    expect(command('cb-connector-console.service')).toEqual([
      'console',
      '--port',
      String(DEFAULT_CONSOLE_PORT),
    ]);
    const consoleDoc = readFileSync(join(ROOT, 'docs/CONSOLE.md'), 'utf8');
    expect(consoleDoc).toContain('cb-connector console');
    expect(consoleDoc).toContain(`127.0.0.1:${DEFAULT_CONSOLE_PORT}`);
  });

  it('start together: the watch pulls the console in, and stopping it stops the console', () => {
    const watch = parseUnit(readUnit('cb-connector.service')).get('Unit')!;
    const console = parseUnit(readUnit('cb-connector-console.service')).get('Unit')!;
    expect(one(watch, 'Wants')).toContain('cb-connector-console.service');
    expect(one(console, 'PartOf')).toBe('cb-connector.service');
    for (const name of UNITS) {
      expect(one(parseUnit(readUnit(name)).get('Install')!, 'WantedBy')).toBe('multi-user.target');
    }
  });
});

describe('the account and folders the units expect', () => {
  const conf = (name: string) =>
    readFileSync(join(ROOT, 'packaging/systemd', name), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'))
      .map((line) => line.split(/\s+/));

  it('are made by the sysusers and tmpfiles files shipped beside them', () => {
    const users = conf('cb-connector.sysusers.conf');
    expect(users).toContainEqual(expect.arrayContaining(['u', 'cb-connector']));
    expect(users).toContainEqual(['m', 'cb-connector', 'cb-drop']);
    const folders = conf('cb-connector.tmpfiles.conf');
    const watch = service('cb-connector.service');
    const drop = one(watch, 'ExecStart')!.split(/\s+/).at(-1)!;
    // The drop folder: the connector owns it, the EHR export writes as a member of cb-drop.
    expect(folders).toContainEqual(['d', drop, '2770', 'cb-connector', 'cb-drop', '-']);
    expect(folders).toContainEqual(['d', `${drop}/inbox`, '2770', 'cb-connector', 'cb-drop', '-']);
    // The settings folder: root writes, the service reads.
    const settings = dirname(watch.get('EnvironmentFile')![0]!);
    expect(folders).toContainEqual(['d', settings, '0750', 'root', 'cb-connector', '-']);
  });
});

const systemdAnalyze = (() => {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.runIf(systemdAnalyze)('systemd-analyze (installed here)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-units-'));
    // verify checks that ExecStart's program exists: point it at the Node running this test.
    for (const name of UNITS) {
      await writeFile(join(dir, name), readUnit(name).replaceAll('/usr/bin/node ', `${process.execPath} `));
    }
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const analyze = (args: string[]) =>
    run('systemd-analyze', args, { cwd: dir }).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        output: error.stdout + error.stderr,
      }),
    );

  it('verify accepts both units, and refuses one with a misspelt directive (so it is really checking)', async () => {
    const verified = await analyze(['verify', ...UNITS.map((name) => `./${name}`)]);
    expect(verified.output).toBe('');
    expect(verified.code).toBe(0);
    await writeFile(
      join(dir, 'misspelt.service'),
      readUnit(UNITS[0])
        .replace('ProtectSystem=strict', 'ProtectSystm=strict')
        .replaceAll('/usr/bin/node ', `${process.execPath} `),
    );
    const misspelt = await analyze(['verify', './misspelt.service']);
    expect(misspelt.output).toContain("Unknown key 'ProtectSystm'");
  });

  // tmpfiles gives the folders their owners, which only root may do.
  it.runIf(process.getuid?.() === 0)(
    'systemd-sysusers and systemd-tmpfiles make the account and the folders (in a scratch root, as root)',
    async () => {
      const root = join(dir, 'root');
      await mkdir(join(root, 'etc'), { recursive: true });
      await run('systemd-sysusers', [
        `--root=${root}`,
        join(ROOT, 'packaging/systemd/cb-connector.sysusers.conf'),
      ]);
      const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
      expect(passwd).toMatch(/^cb-connector:x:\d+:\d+:Clinic Bridge connector:[^:]+:\/usr\/sbin\/nologin$/m);
      expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(/^cb-drop:x:\d+:cb-connector$/m);
      await run('systemd-tmpfiles', [
        `--root=${root}`,
        '--create',
        join(ROOT, 'packaging/systemd/cb-connector.tmpfiles.conf'),
      ]);
      const drop = statSync(join(root, 'srv/clinic-bridge/drop/inbox'));
      expect(drop.isDirectory()).toBe(true);
      expect(drop.mode & 0o7777).toBe(0o2770);
      expect(statSync(join(root, 'etc/clinic-bridge')).mode & 0o777).toBe(0o750);
    },
  );

  it('rates both units’ exposure at most 2.0 of 10 (offline security review)', async () => {
    for (const name of UNITS) {
      const review = await analyze(['security', '--offline=true', '--threshold=20', `./${name}`]);
      expect(review.output).toMatch(/Overall exposure level for .*: [0-2]\.\d OK/);
      expect(review.code, review.output.split('\n').at(-2)).toBe(0);
    }
  });
});

// ---- The container image ----

interface Instruction {
  readonly stage: number;
  readonly keyword: string;
  readonly args: string;
}

function parseContainerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let stage = -1;
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [keyword, ...rest] = trimmed.split(/\s+/);
    if (keyword === 'FROM') stage++;
    instructions.push({ stage, keyword: keyword!, args: rest.join(' ') });
  }
  return instructions;
}

const containerfile = parseContainerfile(
  readFileSync(join(ROOT, 'packaging/container/Containerfile'), 'utf8'),
);
const finalStage = Math.max(...containerfile.map((instruction) => instruction.stage));
const inFinal = (keyword: string) =>
  containerfile.filter((instruction) => instruction.stage === finalStage && instruction.keyword === keyword);
const copies = containerfile
  .filter((instruction) => instruction.keyword === 'COPY' && !instruction.args.startsWith('--from'))
  .map((instruction) => {
    const parts = instruction.args.split(/\s+/);
    return { stage: instruction.stage, sources: parts.slice(0, -1), target: parts.at(-1)! };
  });

describe('the Containerfile', () => {
  it('builds in two stages from Node 22, and the image runs as a fixed non-root user', () => {
    const from = containerfile.filter((instruction) => instruction.keyword === 'FROM');
    expect(from.length).toBe(2);
    const image = containerfile.find((instruction) => instruction.keyword === 'ARG')!.args;
    expect(image).toMatch(/^NODE_IMAGE=node:22[-.]/);
    const user = inFinal('USER');
    expect(user).toHaveLength(1);
    expect(user[0]!.args).not.toMatch(/^(0|root)(:|$)/);
    // Build tools stay in the first stage.
    for (const instruction of inFinal('RUN')) expect(instruction.args).not.toMatch(/g\+\+|make|python3/);
  });

  it('copies only files that exist, installing the clients workspace and every manifest npm checks', () => {
    for (const copy of copies) {
      for (const source of copy.sources) expect(existsSync(join(ROOT, source)), source).toBe(true);
    }
    const workspaces = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }
    ).workspaces;
    const depsSources = copies.filter((copy) => copy.stage === 0).flatMap((copy) => copy.sources);
    for (const workspace of workspaces) expect(depsSources).toContain(`${workspace}/package.json`);
    expect(depsSources).toContain('package-lock.json');
    const install = containerfile.find((instruction) => instruction.args.includes('npm ci'))!;
    expect(install.stage).toBe(0);
    expect(install.args).toContain('--omit=dev');
    expect(install.args).toContain('--workspace=@clinic-bridge/clients');
    // The image holds the connector's source (and the SDK's API client it shares with the
    // device), not the emulator's, the functions' or the tests'.
    const shipped = copies.filter((copy) => copy.stage === finalStage).flatMap((copy) => copy.sources);
    expect(shipped.filter((source) => !source.startsWith('packaging/')).sort()).toEqual(
      ['clients/', 'package.json', 'sdk/', 'shared/'].sort(),
    );
  });

  it('enters through the entrypoint it copies, keeps the home in a volume and checks /healthz', () => {
    const entry = copies.find((copy) => copy.sources.includes('packaging/container/entrypoint.sh'))!;
    expect(entry.stage).toBe(finalStage);
    expect(inFinal('ENTRYPOINT')[0]!.args).toBe(`["${entry.target}"]`);
    expect(statSync(join(ROOT, 'packaging/container/entrypoint.sh')).mode & 0o111).toBe(0o111);
    const env = inFinal('ENV')
      .map((instruction) => instruction.args)
      .join(' ');
    expect(env).toContain('CB_CONNECTOR_HOME=/var/lib/clinic-bridge/connector');
    expect(env).toContain(`CB_CONSOLE_PORT=${DEFAULT_CONSOLE_PORT}`);
    expect(inFinal('VOLUME')[0]!.args).toContain('"/var/lib/clinic-bridge/connector"');
    expect(inFinal('EXPOSE')[0]!.args).toBe(String(DEFAULT_CONSOLE_PORT));
    expect(inFinal('HEALTHCHECK')[0]!.args).toContain(`CMD ["${entry.target}", "healthcheck"]`);
    const script = readFileSync(join(ROOT, 'packaging/container/entrypoint.sh'), 'utf8');
    expect(script).toContain('host: "127.0.0.1"');
    expect(script).toContain('path: "/healthz"');
    expect(script).toContain('connector watch "$CB_DROP_DIR"');
    execFileSync('bash', ['-n', join(ROOT, 'packaging/container/entrypoint.sh')]);
  });

  it('names in its ignore file everything it copies, and never client homes', () => {
    const ignore = readFileSync(join(ROOT, 'packaging/container/Containerfile.dockerignore'), 'utf8');
    const kept = [...ignore.matchAll(/^!(.+)$/gm)].map((match) => match[1]!);
    const sent = (source: string) =>
      kept.some((pattern) => pattern === source || (pattern.endsWith('/') && source.startsWith(pattern)));
    for (const source of copies.flatMap((copy) => copy.sources)) expect(sent(source), source).toBe(true);
    expect(sent('.data/stack.env')).toBe(false);
    expect(sent('test/fixtures/')).toBe(false);
    expect(ignore).toMatch(/^\*$/m);
    expect(ignore).toContain('**/.connector');
    expect(ignore).toContain('**/node_modules');
  });
});

describe('the image’s file set, assembled as the final stage copies it', { timeout: 60_000 }, () => {
  let image: string;
  const entrypoint = () => join(image, 'usr/local/bin/cb-connector-entrypoint');
  const env = (extra: NodeJS.ProcessEnv = {}) => ({
    ...process.env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
    CB_APP_DIR: join(image, 'app'),
    CB_STACK_ENV: '',
    ...extra,
  });

  beforeAll(async () => {
    image = await mkdtemp(join(tmpdir(), 'cb-image-'));
    await mkdir(join(image, 'app'));
    for (const copy of copies.filter((item) => item.stage === finalStage)) {
      const target = copy.target.startsWith('/') ? join(image, copy.target) : join(image, 'app', copy.target);
      for (const source of copy.sources) {
        const into = copy.target.endsWith('/') && !source.endsWith('/') ? join(target, source) : target;
        await mkdir(dirname(into), { recursive: true });
        cpSync(join(ROOT, source), into, { recursive: true });
      }
    }
    // The deps stage's node_modules: here the repository's own.
    await symlink(join(ROOT, 'node_modules'), join(image, 'app', 'node_modules'));
  });

  afterAll(async () => {
    await rm(image, { recursive: true, force: true });
  });

  it('runs cb-connector from the copied source: keys are made in a fresh home', async () => {
    const home = join(image, 'home');
    const { stdout } = await run(
      entrypoint(),
      ['keys', '--hospital', 'st-packaging-test', '--home', home, '--json'],
      { env: env() },
    );
    expect(JSON.parse(stdout)).toMatchObject({ hospitalId: 'st-packaging-test', custody: 'file' });
    expect(statSync(join(home, 'hospital-keys.json')).mode & 0o777).toBe(0o600);
    const help = await run(entrypoint(), ['--help'], { env: env() });
    expect(help.stdout).toMatch(/^\s+watch /m);
  });

  it('its health probe passes only while the real console answers 200 on 127.0.0.1', async () => {
    const home = join(image, 'console-home');
    await mkdir(home, { mode: 0o700 });
    const probe = (port: number) =>
      run(entrypoint(), ['healthcheck'], { env: env({ CB_CONSOLE_PORT: String(port) }) }).then(
        () => 0,
        (error: { code: number }) => error.code,
      );
    const running = await serveConsole({
      home,
      port: 0,
      environment: { env: {}, source: undefined },
      log: () => undefined,
    });
    const port = Number(new URL(running.url).port);
    try {
      // Not configured, no staff: the console says 503, and the probe fails.
      expect(await probe(port)).toBe(1);
      await writeFile(join(home, 'connector.json'), '{}', { mode: 0o600 });
      await addStaff(home, { id: 'ict-probe', role: 'ict-admin', password: 'a long enough password' });
      expect(await probe(port)).toBe(0);
    } finally {
      await running.close();
    }
    // Nothing listening: the probe fails (and does not hang).
    expect(await probe(port)).toBe(1);
  });
});

describe('the entry point’s `run`: the drop folder and the console as one unit', { timeout: 60_000 }, () => {
  let app: string;
  const pidOf = (role: string) => Number(readFileSync(join(app, `${role}.pid`), 'utf8'));
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    // A stand-in cb-connector: records its pid, then `watch` runs until stopped and `console`
    // exits with $FAKE_CONSOLE_EXIT after a moment (or also runs until stopped).
    app = await mkdtemp(join(tmpdir(), 'cb-entry-'));
    await mkdir(join(app, 'clients'));
    await writeFile(
      join(app, 'clients', 'cb-connector.ts'),
      [
        "import { writeFileSync } from 'node:fs';",
        'const role = process.argv[2] ?? "none";',
        'writeFileSync(`${process.env.FAKE_DIR}/${role}.pid`, String(process.pid));',
        'const exit = process.env.FAKE_CONSOLE_EXIT;',
        'if (role === "console" && exit) setTimeout(() => process.exit(Number(exit)), 1500);',
        'else setInterval(() => undefined, 1000);',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    // Should a check fail, leave no stand-in running.
    for (const role of ['watch', 'console']) {
      if (existsSync(join(app, `${role}.pid`)) && alive(pidOf(role))) process.kill(pidOf(role));
    }
    await rm(app, { recursive: true, force: true });
  });

  const start = (extra: NodeJS.ProcessEnv) => {
    const child = execFile(join(ROOT, 'packaging/container/entrypoint.sh'), ['run'], {
      env: {
        ...process.env,
        PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
        CB_APP_DIR: app,
        CB_DROP_DIR: join(app, 'drop'),
        FAKE_DIR: app,
        ...extra,
      },
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))),
    );
    return { child, exited };
  };

  const bothStarted = async () => {
    for (
      let i = 0;
      i < 100 && !(existsSync(join(app, 'watch.pid')) && existsSync(join(app, 'console.pid')));
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  it('when the console stops, stops the watch and exits with the console’s status', async () => {
    await rm(join(app, 'watch.pid'), { force: true });
    await rm(join(app, 'console.pid'), { force: true });
    const { exited } = start({ FAKE_CONSOLE_EXIT: '7' });
    await bothStarted();
    const watch = pidOf('watch');
    expect(alive(watch)).toBe(true);
    expect(await exited).toBe(7);
    expect(alive(watch)).toBe(false);
    expect(existsSync(join(app, 'drop', 'inbox'))).toBe(true);
  });

  it('on TERM (docker stop) stops both and exits', async () => {
    await rm(join(app, 'watch.pid'), { force: true });
    await rm(join(app, 'console.pid'), { force: true });
    const { child, exited } = start({ FAKE_CONSOLE_EXIT: '' });
    await bothStarted();
    const [watch, console] = [pidOf('watch'), pidOf('console')];
    child.kill('SIGTERM');
    expect(await exited).not.toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(alive(watch)).toBe(false);
    expect(alive(console)).toBe(false);
  });
});
