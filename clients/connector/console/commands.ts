// The console's commands for the connector's bin: `cb-connector console` (serve it until
// SIGINT/SIGTERM) and `cb-connector staff add|list|password|remove`. The bin wires them with
// one call, addConsoleCommands(program, home), so the options and their help live beside the
// console. Passwords never come from the command line (process lists, shell history): they are
// read from $CB_STAFF_PASSWORD, piped on stdin, or typed at a prompt that does not echo; the
// OIDC client secret comes from $CB_OIDC_CLIENT_SECRET.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { EXIT, UsageError } from '../../lib/cli.ts';
import { onRun, oneOf, printJson, wholeNumber } from '../../lib/cli-program.ts';
import { loadClientEnvironment } from '../../lib/environment.ts';
import { DEFAULT_CONSOLE_PORT } from './defaults.ts';
import { addStaff, listStaff, removeStaff, ROLES, setPassword, type Role } from './staff.ts';

/** Printed to stdout (what scripts read), as the bins' other commands print. */
function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

interface Globals {
  readonly env?: string;
}

/** A password from $CB_STAFF_PASSWORD, a pipe, or a prompt that does not echo. */
export async function readPassword(
  prompt: string,
  input: NodeJS.ReadStream = process.stdin,
): Promise<string> {
  const fromEnv = process.env.CB_STAFF_PASSWORD;
  if (fromEnv) return fromEnv;
  if (!input.isTTY) {
    let text = '';
    for await (const chunk of input) {
      text += String(chunk);
      if (text.includes('\n') || text.length > 4096) break;
    }
    return text.split(/\r?\n/)[0]!;
  }
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (chunk: Buffer) => {
        for (const char of chunk.toString('utf8')) {
          if (char === '\r' || char === '\n') {
            input.off('data', onData);
            process.stderr.write('\n');
            return resolve(typed);
          }
          if (char === '\u0003') {
            input.off('data', onData);
            return reject(new UsageError('cancelled'));
          }
          if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
          else typed += char;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
  }
}

interface ConsoleCommandOptions extends Globals {
  readonly host: string;
  readonly port: number;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly oidcIssuer?: string;
  readonly oidcClientId?: string;
  readonly oidcRedirectUri?: string;
  readonly oidcClaim?: string;
  readonly inviteMinutes: number;
}

interface StaffAddOptions extends Globals {
  readonly role?: Role;
  readonly name?: string;
  readonly oidcSubject?: string;
  readonly json?: boolean;
}

/**
 * Adds `console` and `staff …` to the connector's program. `homeOf` turns the parsed options
 * into the connector's home directory, as the bin's other commands find it.
 */
export function addConsoleCommands(program: Command, homeOf: (options: object) => string): void {
  onRun<ConsoleCommandOptions>(
    program
      .command('console')
      .summary('Serve the front-desk web console (docs/CONSOLE.md)')
      .description(
        'Serve the front-desk web console until stopped (Ctrl-C, SIGTERM). Binds 127.0.0.1 unless told otherwise; any other address needs --tls-cert and --tls-key (CONSOLE_TLS_REQUIRED). Logs are JSON lines on stderr; GET /healthz answers without sign-in.',
      )
      .option('--host <address>', 'the address to listen on', '127.0.0.1')
      .option('--port <port>', 'the port (0: any free one)', wholeNumber(0, 65535), DEFAULT_CONSOLE_PORT)
      .option('--tls-cert <file>', 'PEM certificate chain for HTTPS')
      .option('--tls-key <file>', 'PEM private key for HTTPS')
      .option(
        '--oidc-issuer <url>',
        'sign-in with the hospital’s identity provider (secret in $CB_OIDC_CLIENT_SECRET)',
      )
      .option('--oidc-client-id <id>', 'the console’s client id at the provider')
      .option(
        '--oidc-redirect-uri <url>',
        'the callback registered at the provider (default <console>/login/oidc/callback)',
      )
      .option(
        '--oidc-claim <claim>',
        'the ID-token claim that names the member of staff',
        'preferred_username',
      )
      .option(
        '--invite-minutes <minutes>',
        'how long an invitation QR stays valid',
        wholeNumber(1, 10080),
        60,
      ),
    async (options) => {
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
        throw new UsageError('--tls-cert and --tls-key go together');
      }
      if ((options.oidcIssuer === undefined) !== (options.oidcClientId === undefined)) {
        throw new UsageError('--oidc-issuer and --oidc-client-id go together');
      }
      const read = (file: string) =>
        readFile(file).catch(() => {
          throw new UsageError(`cannot read ${file}`);
        });
      const secret = process.env.CB_OIDC_CLIENT_SECRET;
      // Loaded only here: the server, its pages and sign-in are the console's alone.
      const { serveConsole } = await import('./server.ts');
      const running = await serveConsole({
        home: homeOf(options),
        host: options.host,
        port: options.port,
        ...(options.tlsCert && options.tlsKey
          ? { tls: { cert: await read(options.tlsCert), key: await read(options.tlsKey) } }
          : {}),
        ...(options.oidcIssuer && options.oidcClientId
          ? {
              oidc: {
                issuer: options.oidcIssuer,
                clientId: options.oidcClientId,
                ...(secret ? { clientSecret: secret } : {}),
                ...(options.oidcRedirectUri ? { redirectUri: options.oidcRedirectUri } : {}),
                claim: options.oidcClaim ?? 'preferred_username',
              },
            }
          : {}),
        environment: loadClientEnvironment(options.env),
        invite: { expiresMinutes: options.inviteMinutes },
      });
      say(`Console at ${running.url} (Ctrl-C to stop).`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await running.close();
      return EXIT.OK;
    },
  );

  const staff = program
    .command('staff')
    .summary('The console’s staff accounts: add, list, password, remove')
    .description('The front-desk console’s staff accounts, in console-staff.json in --home (owner-only).');

  onRun<StaffAddOptions>(
    staff
      .command('add')
      .description(
        'Add an account. Without --oidc-subject the password is read from $CB_STAFF_PASSWORD, stdin, or a prompt (12 characters or more).',
      )
      .argument('<account>', 'the account name the hospital’s journals will show (a-z 0-9 . _ @ -)')
      .option('--role <role>', `one of ${ROLES.join(', ')} (required)`, oneOf(ROLES))
      .option('--name <name>', 'the person’s name, shown to ICT')
      .option(
        '--oidc-subject <value>',
        'sign-in through the identity provider: the value of its claim for this person',
      )
      .option('--json', 'print the account'),
    async (options, [id]) => {
      if (!options.role) throw new UsageError(`staff add needs --role (${ROLES.join(' or ')})`);
      const password = options.oidcSubject ? undefined : await readPassword(`Password for ${id}: `);
      const member = await addStaff(homeOf(options), {
        id: id!,
        role: options.role,
        ...(password !== undefined ? { password } : {}),
        ...(options.name ? { name: options.name } : {}),
        ...(options.oidcSubject ? { oidcSubject: options.oidcSubject } : {}),
      });
      if (options.json) printJson(member);
      else say(`Added ${member.id} (${member.role}).`);
      return EXIT.OK;
    },
  );

  onRun<Globals & { json?: boolean }>(
    staff
      .command('list')
      .description('List the accounts (never their hashes).')
      .option('--json', 'print {staff: [...]}'),
    async (options) => {
      const members = await listStaff(homeOf(options));
      if (options.json) printJson({ staff: members });
      else if (members.length === 0) say('No staff accounts yet (`staff add NAME --role ict-admin`).');
      for (const member of options.json ? [] : members) {
        const signIn = [
          member.password ? 'password' : '',
          member.oidcSubject ? `oidc:${member.oidcSubject}` : '',
        ]
          .filter(Boolean)
          .join(',');
        say(`${member.id}  ${member.role}  ${signIn}${member.name ? `  ${member.name}` : ''}`);
      }
      return EXIT.OK;
    },
  );

  onRun<Globals>(
    staff
      .command('password')
      .description('Set a new password ($CB_STAFF_PASSWORD, stdin, or a prompt); the old one stops working.')
      .argument('<account>'),
    async (options, [id]) => {
      await setPassword(homeOf(options), id!, await readPassword(`New password for ${id}: `));
      say(`Password of ${id} set.`);
      return EXIT.OK;
    },
  );

  onRun<Globals>(
    staff
      .command('remove')
      .description('Remove an account; a running console ends its sessions at their next request.')
      .argument('<account>'),
    async (options, [id]) => {
      await removeStaff(homeOf(options), id!);
      say(`Removed ${id}.`);
      return EXIT.OK;
    },
  );
}
