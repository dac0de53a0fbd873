// The console's commands as the connector's bin will carry them (addConsoleCommands on a
// commander program, parsed the way the bins parse): staff accounts added with a password from
// the environment, never from the command line, listed without hashes, refused with the store's
// codes and commander's usage errors, and a console that will not serve beyond loopback without
// TLS.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addConsoleCommands } from '../../clients/connector/console/commands.ts';
import { STAFF_FILE } from '../../clients/connector/console/staff.ts';
import { createProgram, runProgram } from '../../clients/lib/cli-program.ts';
import { captureStdout } from '../helpers/stdout-capture.ts';

const PASSWORD = 'a console passphrase';

describe('cb-connector console and staff commands', () => {
  let home: string;
  const errors: string[] = [];

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'cb-console-cli-'));
  });
  afterAll(async () => {
    delete process.env.CB_STAFF_PASSWORD;
    await rm(home, { recursive: true, force: true });
  });

  async function run(...argv: string[]): Promise<{ code: number; out: string }> {
    const program = createProgram('cb-connector', 'test', {
      out: (text) => process.stdout.write(text),
      err: (text) => errors.push(text),
    })
      .option('--home <dir>')
      .option('--env <file>');
    addConsoleCommands(program, (options) => (options as { home: string }).home);
    const capture = captureStdout();
    try {
      const code = await runProgram(program, [...argv, '--home', home], {
        out: (text) => process.stdout.write(text),
        err: (text) => errors.push(text),
      });
      return { code, out: capture.lines.join('') };
    } finally {
      capture.restore();
    }
  }

  it('adds, lists, re-passwords and removes accounts', async () => {
    process.env.CB_STAFF_PASSWORD = PASSWORD;
    expect(await run('staff', 'add', 'ict-ingrid', '--role', 'ict-admin', '--name', 'Ingrid')).toMatchObject({
      code: 0,
      out: 'Added ict-ingrid (ict-admin).\n',
    });
    expect(
      (await run('staff', 'add', 'anna', '--role', 'front-desk', '--oidc-subject', 'a@hospital')).code,
    ).toBe(0);
    const listed = await run('staff', 'list', '--json');
    expect(JSON.parse(listed.out)).toEqual({
      staff: [
        expect.objectContaining({ id: 'ict-ingrid', role: 'ict-admin', password: true, name: 'Ingrid' }),
        expect.objectContaining({
          id: 'anna',
          role: 'front-desk',
          password: false,
          oidcSubject: 'a@hospital',
        }),
      ],
    });
    expect((await run('staff', 'list')).out).toContain('anna  front-desk  oidc:a@hospital');
    expect(await readFile(join(home, STAFF_FILE), 'utf8')).not.toContain(PASSWORD);
    expect((await run('staff', 'password', 'anna')).code).toBe(0);
    expect(JSON.parse((await run('staff', 'list', '--json')).out).staff[1].password).toBe(true);
    expect((await run('staff', 'remove', 'anna')).code).toBe(0);
    expect((await run('staff', 'list')).out).not.toContain('anna');
  });

  it('refuses with exit 2 for usage and 3 with a stable code for the store', async () => {
    process.env.CB_STAFF_PASSWORD = PASSWORD;
    expect((await run('staff', 'add', 'bob')).code).toBe(2); // no --role
    expect((await run('staff', 'add', 'bob', '--role', 'surgeon')).code).toBe(2);
    errors.length = 0;
    expect((await run('staff', 'add', 'ict-ingrid', '--role', 'ict-admin')).code).toBe(3);
    expect(errors.join('')).toContain('STAFF_EXISTS');
    process.env.CB_STAFF_PASSWORD = 'short';
    errors.length = 0;
    expect((await run('staff', 'add', 'bob', '--role', 'front-desk')).code).toBe(3);
    expect(errors.join('')).toContain('STAFF_PASSWORD_WEAK');
    expect(errors.join('')).not.toContain('short');
    errors.length = 0;
    expect((await run('staff', 'remove', 'ict-ingrid')).code).toBe(3);
    expect(errors.join('')).toContain('STAFF_LAST_ADMIN');
  });

  it('will not serve beyond loopback without TLS', async () => {
    errors.length = 0;
    const refused = await run('console', '--host', '0.0.0.0', '--port', '0', '--env', '/dev/null');
    expect(refused.code, errors.join('')).toBe(3);
    expect(errors.join('')).toContain('CONSOLE_TLS_REQUIRED');
    expect((await run('console', '--tls-cert', 'x.pem')).code).toBe(2);
  });
});
