// The console's staff store: scrypt hashes with a salt each (the same password twice is two
// different hashes), verification that fails for a wrong password, an unknown account or a
// changed one, an owner-only file, clear codes for bad input, and the last ICT administrator
// kept.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addStaff, listStaff, removeStaff, setPassword } from '../../clients/connector/console/index.ts';
import { STAFF_FILE, StaffStore } from '../../clients/connector/console/staff.ts';

const PASSWORD = 'correct horse battery';

describe('console staff store', () => {
  let home: string;
  let store: StaffStore;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'cb-console-staff-'));
    store = new StaffStore(home);
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('stores scrypt hashes, never the password, in an owner-only file', async () => {
    await addStaff(home, { id: 'ict-ingrid', role: 'ict-admin', password: PASSWORD, name: 'Ingrid' });
    await addStaff(home, { id: 'anna.desk', role: 'front-desk', password: PASSWORD });
    const text = await readFile(join(home, STAFF_FILE), 'utf8');
    expect(text).not.toContain(PASSWORD);
    const stored = JSON.parse(text) as {
      staff: { password: { algorithm: string; salt: string; hash: string } }[];
    };
    expect(stored.staff.map((account) => account.password.algorithm)).toEqual(['scrypt', 'scrypt']);
    // Same password, different salts, different hashes.
    expect(stored.staff[0]!.password.salt).not.toBe(stored.staff[1]!.password.salt);
    expect(stored.staff[0]!.password.hash).not.toBe(stored.staff[1]!.password.hash);
    expect((await stat(join(home, STAFF_FILE))).mode & 0o777).toBe(0o600);
    expect(await listStaff(home)).toEqual([
      expect.objectContaining({ id: 'ict-ingrid', role: 'ict-admin', password: true, name: 'Ingrid' }),
      expect.objectContaining({ id: 'anna.desk', role: 'front-desk', password: true }),
    ]);
    expect(JSON.stringify(await listStaff(home))).not.toContain('hash');
  });

  it('verifies the right password only', async () => {
    expect(await store.verify('anna.desk', PASSWORD)).toMatchObject({ id: 'anna.desk', role: 'front-desk' });
    expect(await store.verify('anna.desk', `${PASSWORD}!`)).toBeUndefined();
    expect(await store.verify('anna.desk', PASSWORD.toUpperCase())).toBeUndefined();
    expect(await store.verify('nobody', PASSWORD)).toBeUndefined();
    expect(await store.verify('anna.desk', 'x'.repeat(5000))).toBeUndefined();
  });

  it('changes a password: the old one stops working', async () => {
    await setPassword(home, 'anna.desk', 'a new long passphrase');
    expect(await store.verify('anna.desk', PASSWORD)).toBeUndefined();
    expect(await store.verify('anna.desk', 'a new long passphrase')).toMatchObject({ id: 'anna.desk' });
    await expect(setPassword(home, 'nobody', 'a new long passphrase')).rejects.toMatchObject({
      code: 'STAFF_UNKNOWN',
    });
  });

  it('refuses bad input with stable codes', async () => {
    await expect(
      addStaff(home, { id: 'anna.desk', role: 'front-desk', password: PASSWORD }),
    ).rejects.toMatchObject({
      code: 'STAFF_EXISTS',
    });
    await expect(
      addStaff(home, { id: 'Bad Name', role: 'front-desk', password: PASSWORD }),
    ).rejects.toMatchObject({
      code: 'STAFF_ID_INVALID',
    });
    await expect(addStaff(home, { id: 'bob', role: 'surgeon', password: PASSWORD })).rejects.toMatchObject({
      code: 'STAFF_ROLE_INVALID',
    });
    await expect(addStaff(home, { id: 'bob', role: 'front-desk', password: 'short' })).rejects.toMatchObject({
      code: 'STAFF_PASSWORD_WEAK',
    });
    await expect(addStaff(home, { id: 'bob', role: 'front-desk' })).rejects.toMatchObject({
      code: 'STAFF_PASSWORD_WEAK',
    });
  });

  it('adds accounts written at the same moment without losing one', async () => {
    await Promise.all(
      ['c1', 'c2', 'c3'].map((id) =>
        addStaff(home, { id, role: 'front-desk', oidcSubject: `${id}@hospital` }),
      ),
    );
    expect((await listStaff(home)).map((member) => member.id)).toEqual(
      expect.arrayContaining(['c1', 'c2', 'c3']),
    );
    expect(await store.byOidcSubject('c2@hospital')).toMatchObject({ id: 'c2', password: false });
    // An OIDC-only account has no password to guess.
    expect(await store.verify('c2', '')).toBeUndefined();
  });

  it('keeps the last ICT administrator and removes others', async () => {
    await expect(removeStaff(home, 'ict-ingrid')).rejects.toMatchObject({ code: 'STAFF_LAST_ADMIN' });
    await removeStaff(home, 'c1');
    expect((await listStaff(home)).map((member) => member.id)).not.toContain('c1');
    await expect(removeStaff(home, 'c1')).rejects.toMatchObject({ code: 'STAFF_UNKNOWN' });
  });

  it('refuses a store others can read, and a damaged one, with a code', async () => {
    const path = join(home, STAFF_FILE);
    await chmod(path, 0o644);
    await expect(store.verify('anna.desk', PASSWORD)).rejects.toMatchObject({ code: 'STAFF_STORE_DAMAGED' });
    await chmod(path, 0o600);
    const other = await mkdtemp(join(tmpdir(), 'cb-console-staff-'));
    await writeFile(join(other, STAFF_FILE), '{"format":"something else"}', { mode: 0o600 });
    await expect(listStaff(other)).rejects.toMatchObject({ code: 'STAFF_STORE_DAMAGED' });
    await rm(other, { recursive: true, force: true });
  });
});
