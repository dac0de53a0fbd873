// The command-line shape the bins share (clients/lib/cli-program.ts), on a small program built
// the way the bins build theirs: what exits 2, what exits 0, where options may go, and how values
// that begin with '-' (base64url ids can) get through.
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../clients/lib/api-client.ts';
import { EXIT, UsageError } from '../../clients/lib/cli.ts';
import {
  clientVersion,
  collect,
  createProgram,
  onRun,
  oneOf,
  runProgram,
  wholeNumber,
  type ProgramOutput,
} from '../../clients/lib/cli-program.ts';
import { NetworkError } from '../../clients/lib/reachability.ts';
import clientsPackage from '../../clients/package.json' with { type: 'json' };

interface Seen {
  options?: Record<string, unknown>;
  args?: string[];
}

function toyProgram(fail?: unknown) {
  const lines = { out: '', err: '' };
  const output: ProgramOutput = { out: (text) => (lines.out += text), err: (text) => (lines.err += text) };
  const seen: Seen = {};
  const program = createProgram('cb-connector', 'a toy', output).option('--home <dir>', 'state');
  onRun<Record<string, unknown>>(
    program.command('recall').argument('<record-id>').option('--json', 'as JSON', false),
    async (options, args) => {
      Object.assign(seen, { options, args });
      if (fail) throw fail;
      return EXIT.OK;
    },
  );
  onRun<Record<string, unknown>>(
    program
      .command('send')
      .argument('<file...>')
      .option('--patient <number>')
      .option('--timeout <seconds>', 'wait', wholeNumber(0, 600), 60)
      .option('--class <class>', 'kind', oneOf(['document', 'fhir'] as const), 'document')
      .option('--set <a=b>', 'repeatable', collect, []),
    async (options, args) => {
      Object.assign(seen, { options, args });
      return EXIT.REFUSED; // a handler's exit code is the bin's
    },
  );
  const run = (...argv: string[]) => runProgram(program, argv, output);
  return { run, seen, lines };
}

describe('the bins’ command line', () => {
  it('takes global options before or after the command, and --opt=value', async () => {
    const before = toyProgram();
    expect(await before.run('--home', 'h1', 'recall', 'abc')).toBe(EXIT.OK);
    expect(before.seen).toEqual({ options: { home: 'h1', json: false }, args: ['abc'] });
    const after = toyProgram();
    expect(await after.run('recall', 'abc', '--json', '--home=h2')).toBe(EXIT.OK);
    expect(after.seen).toEqual({ options: { home: 'h2', json: true }, args: ['abc'] });
  });

  it('lets a value begin with -: after -- for positionals, and as an option’s value', async () => {
    const id = '-Ab3_defghijklmnopqrst';
    const positional = toyProgram();
    expect(await positional.run('recall', '--home', 'h', '--', id)).toBe(EXIT.OK);
    expect(positional.seen.args).toEqual([id]);
    // Without '--' it reads as an option: a usage error, never a silent misreading.
    const unmarked = toyProgram();
    expect(await unmarked.run('recall', id)).toBe(EXIT.USAGE);
    expect(unmarked.seen.args).toBeUndefined();
    const option = toyProgram();
    expect(await option.run('send', 'f', '--patient', '-12', '--set', 'a=1', '--set=b=2')).toBe(EXIT.REFUSED);
    expect(option.seen.options).toMatchObject({ patient: '-12', set: ['a=1', 'b=2'], timeout: 60 });
    expect(option.seen.args).toEqual(['f']);
  });

  it('exits 2 with a did-you-mean for an unknown command or option', async () => {
    const command = toyProgram();
    expect(await command.run('recal', 'x')).toBe(EXIT.USAGE);
    expect(command.lines.err).toContain("cb-connector: unknown command 'recal'");
    expect(command.lines.err).toContain('Did you mean recall?');
    const option = toyProgram();
    expect(await option.run('send', 'f', '--patinet', '1')).toBe(EXIT.USAGE);
    expect(option.lines.err).toContain("unknown option '--patinet'");
    expect(option.lines.err).toContain('Did you mean --patient?');
    expect(option.seen.args).toBeUndefined(); // the handler never ran
  });

  it('exits 2 for a missing or extra argument, a bad number or choice, and no command at all', async () => {
    for (const argv of [
      ['recall'],
      ['recall', 'a', 'b'],
      ['send', 'f', '--timeout', '601'],
      ['send', 'f', '--timeout', '1e3'],
      ['send', 'f', '--class', 'poem'],
      [],
    ]) {
      const toy = toyProgram();
      expect(await toy.run(...argv), argv.join(' ')).toBe(EXIT.USAGE);
      expect(toy.seen.args).toBeUndefined();
      expect(toy.lines.err).not.toBe('');
    }
    const bad = toyProgram();
    await bad.run('send', 'f', '--timeout', 'soon');
    expect(bad.lines.err).toContain('must be a whole number from 0 to 600');
  });

  it('prints help for the program and for each command (exit 0), and the package version', async () => {
    const help = toyProgram();
    expect(await help.run('--help')).toBe(EXIT.OK);
    expect(help.lines.out).toMatch(/Usage: cb-connector \[options\] \[command\]/);
    const commandHelp = toyProgram();
    expect(await commandHelp.run('send', '--help')).toBe(EXIT.OK);
    expect(commandHelp.lines.out).toContain('Usage: cb-connector send [options] <file...>');
    expect(commandHelp.lines.out).toContain('--timeout <seconds>');
    const helpCommand = toyProgram();
    expect(await helpCommand.run('help', 'recall')).toBe(EXIT.OK);
    expect(helpCommand.lines.out).toContain('Usage: cb-connector recall');
    const version = toyProgram();
    expect(await version.run('--version')).toBe(EXIT.OK);
    expect(version.lines.out.trim()).toBe(clientsPackage.version);
    expect(clientVersion()).toBe(clientsPackage.version);
  });

  it('maps a handler’s failure to its exit code and prints the stable code, never a stack', async () => {
    const cases: [unknown, number, string][] = [
      [
        new UsageError('send needs --patient NUMBER'),
        EXIT.USAGE,
        'cb-connector: send needs --patient NUMBER\n',
      ],
      [
        new ApiError(404, 'NOT_FOUND', 'No such record.'),
        EXIT.REFUSED,
        'cb-connector: NOT_FOUND: No such record.\n',
      ],
      [
        new NetworkError('SERVICE_UNREACHABLE', 'http://127.0.0.1:9/pairing/v1/x', 'ECONNREFUSED'),
        EXIT.FAILURE,
        'cb-connector: SERVICE_UNREACHABLE: cannot reach http://127.0.0.1:9/pairing/v1/x (ECONNREFUSED)',
      ],
    ];
    for (const [error, code, message] of cases) {
      const toy = toyProgram(error);
      expect(await toy.run('recall', 'abc')).toBe(code);
      expect(toy.lines.err.startsWith(message)).toBe(true);
      expect(toy.lines.err).not.toContain('    at ');
    }
  });
});
