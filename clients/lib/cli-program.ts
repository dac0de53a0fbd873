// The command-line shape the three bins share, over commander: subcommands with their own
// --help, --version, usage errors that exit 2 with a "did you mean", options accepted before or
// after the subcommand, `--opt=value`, and `--` before positionals (base64url ids may begin with
// '-'). A bin declares its commands and hands each a handler that returns an exit code; errors
// thrown by a handler are printed and mapped by describeFailure, the same way for every bin.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { describeFailure, EXIT, type ClientName } from './cli.ts';

/** The clients package's version (clients/package.json), which `--version` prints. */
export function clientVersion(): string {
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** Where a bin's output goes; tests pass their own to read it. */
export interface ProgramOutput {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const PROCESS_OUTPUT: ProgramOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

// The exit code each program's handler returned (one program per process in a bin, several in tests).
const outcomes = new WeakMap<Command, number>();

function rootOf(command: Command): Command {
  let root = command;
  while (root.parent) root = root.parent;
  return root;
}

/**
 * The top-level command of a bin: exit-code and output settings are set here, before any
 * subcommand is added, because commander copies them into each subcommand when it is made.
 */
export function createProgram(
  name: ClientName,
  description: string,
  output: ProgramOutput = PROCESS_OUTPUT,
): Command {
  return (
    new Command(name)
      .description(description)
      .version(clientVersion(), '-V, --version', 'print the version')
      .helpOption('-h, --help', 'this text (also after a command: `<command> --help`)')
      .helpCommand('help [command]', 'the help of a command')
      .exitOverride()
      .showSuggestionAfterError(true)
      .showHelpAfterError(`(see \`${name} --help\`, or \`${name} <command> --help\`)`)
      // Positionals are exactly what each command declares: an extra word is a usage error.
      .allowExcessArguments(false)
      .configureOutput({
        writeOut: output.out,
        writeErr: output.err,
        // "cb-x: message" like every other failure of the bins, not commander's "error: message".
        outputError: (text, write) => write(`${name}: ${text.replace(/^error: /, '')}`),
      })
  );
}

/**
 * Makes `handler` the action of `command`: it gets the command's options merged with the
 * program's (so `--home X` works before or after the subcommand) and the positionals, and
 * returns the exit code.
 */
export function onRun<Options>(
  command: Command,
  handler: (options: Options, args: string[]) => Promise<number>,
): Command {
  return command.action(async (...received: unknown[]) => {
    const self = received.at(-1) as Command;
    outcomes.set(rootOf(self), await handler(self.optsWithGlobals<Options & object>(), [...self.args]));
  });
}

/**
 * Parses `argv` (without node and the script) and runs the chosen command; returns the exit
 * code. Usage mistakes (unknown command or option, missing or extra argument, a bad value)
 * exit 2; --help and --version exit 0; a handler's error is printed as `name: message`.
 */
export async function runProgram(
  program: Command,
  argv: readonly string[],
  output: ProgramOutput = PROCESS_OUTPUT,
): Promise<number> {
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return outcomes.get(program) ?? EXIT.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help asked for (--help, `help cmd`) or the version: 0. Help shown because no command
      // was given, or any parse error (already printed by commander): a usage error.
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const { message, exitCode } = describeFailure(error);
    output.err(`${program.name()}: ${message}\n`);
    if (process.env.CB_DEBUG) output.err(`${(error as Error | null)?.stack ?? ''}\n`);
    return exitCode;
  }
}

/** Runs a bin: parses process.argv, sets the exit code. */
export async function runBin(program: Command): Promise<void> {
  process.exitCode = await runProgram(program, process.argv.slice(2));
}

/**
 * An option parser for a whole number within bounds; a bad value is a usage error naming the
 * option and the bounds (commander prints it and the bin exits 2).
 */
export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    const number = /^-?[0-9]+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(number) || number < min || number > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return number;
  };
}

/** A value that must be one of `choices`, checked when parsed. */
export function oneOf<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`must be ${choices.join(', ')}`);
    }
    return value as T;
  };
}

/** Collects a repeatable option (`--set a=1 --set b=2`). */
export function collect(value: string, previous: readonly string[] = []): string[] {
  return [...previous, value];
}

/** Prints one JSON document on stdout: what `--json` promises, and nothing else on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
