// The console's built-in staff accounts: an owner-only JSON file in the connector's home
// (next to the hospital's keys, and as private), each account with a role and, for password
// sign-in, a scrypt hash (node:crypto, a fresh salt per password, parameters stored with it so
// they can be raised later). Accounts that sign in through the hospital's identity provider
// name their subject there instead of, or as well as, a password. Nobody gets in without an
// account here: OIDC authenticates, this file authorises.
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeJsonFile } from '../../lib/files.ts';
import { ConsoleError } from './errors.ts';

export const STAFF_FILE = 'console-staff.json';
const FORMAT = 'clinic-bridge/console-staff/v1';

export const ROLES = ['front-desk', 'ict-admin'] as const;
export type Role = (typeof ROLES)[number];

/** Account names as they appear in the hospital's journals (max 128 there). */
export const staffIdSchema = z.string().regex(/^[a-z0-9][a-z0-9._@-]{0,63}$/);

export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;

/**
 * N = 2^15, r = 8, p = 3: one of OWASP's equivalent scrypt minimums, chosen over 2^17·8·1 for its
 * 32 MiB instead of 128 MiB a try. Hashes run on libuv's small thread pool, so a burst of sign-ins
 * queues there rather than holding many such buffers at once.
 */
const SCRYPT = { N: 32768, r: 8, p: 3 } as const;
const KEY_LENGTH = 32;

const passwordHashSchema = z.strictObject({
  algorithm: z.literal('scrypt'),
  N: z
    .int()
    .min(16384)
    .max(1 << 20),
  r: z.int().min(8).max(32),
  p: z.int().min(1).max(16),
  salt: z.string().min(16),
  hash: z.string().min(32),
});
type PasswordHash = z.output<typeof passwordHashSchema>;

const accountSchema = z.strictObject({
  id: staffIdSchema,
  name: z.string().max(200).optional(),
  role: z.enum(ROLES),
  password: passwordHashSchema.optional(),
  /** The identity provider's value of the configured claim (e.g. preferred_username). */
  oidcSubject: z.string().min(1).max(256).optional(),
  createdAt: z.iso.datetime(),
});
type Account = z.output<typeof accountSchema>;

const storeSchema = z.strictObject({ format: z.literal(FORMAT), staff: z.array(accountSchema) });

/** An account as the console shows and uses it: never its hash. */
export interface StaffMember {
  readonly id: string;
  readonly name?: string;
  readonly role: Role;
  readonly password: boolean;
  readonly oidcSubject?: string;
  readonly createdAt: string;
  /**
   * Changes whenever the role or a credential changes (a new password has a new salt): a
   * session made under another stamp is over.
   */
  readonly stamp: string;
}

function publicView(account: Account): StaffMember {
  const stamp = createHash('sha256')
    .update(JSON.stringify([account.role, account.password?.salt ?? '', account.oidcSubject ?? '']))
    .digest('base64url')
    .slice(0, 22);
  return {
    stamp,
    id: account.id,
    ...(account.name ? { name: account.name } : {}),
    role: account.role,
    password: account.password !== undefined,
    ...(account.oidcSubject ? { oidcSubject: account.oidcSubject } : {}),
    createdAt: account.createdAt,
  };
}

function scryptAsync(password: string, salt: Buffer, params: { N: number; r: number; p: number }) {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r };
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  checkPassword(password);
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, SCRYPT);
  return { algorithm: 'scrypt', ...SCRYPT, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

/** Whether `password` matches `stored`, compared in constant time. */
export async function passwordMatches(password: string, stored: PasswordHash): Promise<boolean> {
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  const expected = Buffer.from(stored.hash, 'base64');
  const actual = await scryptAsync(password, Buffer.from(stored.salt, 'base64'), stored);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function checkPassword(password: string): void {
  if ([...password].length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw new ConsoleError(
      'STAFF_PASSWORD_WEAK',
      `a password has ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`,
    );
  }
}

function checkId(id: string): string {
  const parsed = staffIdSchema.safeParse(id);
  if (!parsed.success) {
    throw new ConsoleError(
      'STAFF_ID_INVALID',
      'a staff account is 1–64 of a-z, 0-9, ".", "_", "@" and "-", starting with a letter or digit',
    );
  }
  return parsed.data;
}

/** Writers of one store file, in turn: two admins adding accounts at once must both land. */
const writers = new Map<string, Promise<unknown>>();
function inTurn<T>(path: string, task: () => Promise<T>): Promise<T> {
  const run = (writers.get(path) ?? Promise.resolve()).then(task, task);
  writers.set(
    path,
    run.catch(() => undefined),
  );
  return run;
}

/** Verified against a hash of a password nobody has, so an unknown account costs the same time. */
let decoy: Promise<PasswordHash> | undefined;

export class StaffStore {
  readonly path: string;

  constructor(homeDir: string) {
    this.path = join(homeDir, STAFF_FILE);
  }

  async #read(): Promise<Account[]> {
    const info = await stat(this.path).catch(() => undefined);
    if (!info) return [];
    if ((info.mode & 0o077) !== 0) {
      throw new ConsoleError(
        'STAFF_STORE_DAMAGED',
        `${this.path} is readable or writable by others: run chmod 600 ${this.path}`,
      );
    }
    try {
      return (await readJsonFile(this.path, storeSchema, 'staff store')).staff;
    } catch {
      throw new ConsoleError('STAFF_STORE_DAMAGED', `${this.path} is not a valid staff store`);
    }
  }

  async #write(staff: readonly Account[]): Promise<void> {
    await writeJsonFile(this.path, { format: FORMAT, staff });
  }

  async list(): Promise<StaffMember[]> {
    return (await this.#read()).map(publicView);
  }

  async get(id: string): Promise<StaffMember | undefined> {
    const account = (await this.#read()).find((candidate) => candidate.id === id);
    return account && publicView(account);
  }

  async add(options: {
    readonly id: string;
    readonly role: string;
    readonly password?: string;
    readonly name?: string;
    readonly oidcSubject?: string;
    readonly now?: Date;
  }): Promise<StaffMember> {
    return inTurn(this.path, () => this.#add(options));
  }

  async #add(options: Parameters<StaffStore['add']>[0]): Promise<StaffMember> {
    const id = checkId(options.id);
    const role = z.enum(ROLES).safeParse(options.role);
    if (!role.success) throw new ConsoleError('STAFF_ROLE_INVALID', `a role is one of ${ROLES.join(', ')}`);
    if (options.password === undefined && !options.oidcSubject) {
      throw new ConsoleError('STAFF_PASSWORD_WEAK', 'an account needs a password or an OIDC subject');
    }
    const staff = await this.#read();
    if (staff.some((account) => account.id === id)) {
      throw new ConsoleError('STAFF_EXISTS', `there is already an account ${id}`);
    }
    const account = accountSchema.parse({
      id,
      role: role.data,
      ...(options.name ? { name: options.name } : {}),
      ...(options.password !== undefined ? { password: await hashPassword(options.password) } : {}),
      ...(options.oidcSubject ? { oidcSubject: options.oidcSubject } : {}),
      createdAt: (options.now ?? new Date()).toISOString(),
    });
    await this.#write([...staff, account]);
    return publicView(account);
  }

  async setPassword(id: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    return inTurn(this.path, () => this.#setHash(id, hash));
  }

  async #setHash(id: string, hash: PasswordHash): Promise<void> {
    const staff = await this.#read();
    const account = staff.find((candidate) => candidate.id === id);
    if (!account) throw new ConsoleError('STAFF_UNKNOWN', `there is no account ${id}`);
    account.password = hash;
    await this.#write(staff);
  }

  remove(id: string): Promise<void> {
    return inTurn(this.path, () => this.#remove(id));
  }

  async #remove(id: string): Promise<void> {
    const staff = await this.#read();
    const account = staff.find((candidate) => candidate.id === id);
    if (!account) throw new ConsoleError('STAFF_UNKNOWN', `there is no account ${id}`);
    // The console must stay manageable without editing the file by hand.
    if (account.role === 'ict-admin' && staff.filter((other) => other.role === 'ict-admin').length === 1) {
      throw new ConsoleError('STAFF_LAST_ADMIN', 'the last ICT administrator cannot be removed');
    }
    await this.#write(staff.filter((other) => other.id !== id));
  }

  /** The account whose password this is, or undefined; the same work whether the account exists. */
  async verify(id: string, password: string): Promise<StaffMember | undefined> {
    const account = (await this.#read()).find((candidate) => candidate.id === id);
    if (!account?.password) {
      decoy ??= hashPassword(randomBytes(24).toString('base64'));
      await passwordMatches(password, await decoy);
      return undefined;
    }
    return (await passwordMatches(password, account.password)) ? publicView(account) : undefined;
  }

  /** The account an identity provider's subject maps to, or undefined. */
  async byOidcSubject(subject: string): Promise<StaffMember | undefined> {
    const account = (await this.#read()).find((candidate) => candidate.oidcSubject === subject);
    return account && publicView(account);
  }
}

// The functions the connector's bin wires as `cb-connector staff add|list|remove|password`.

export function addStaff(homeDir: string, options: Parameters<StaffStore['add']>[0]): Promise<StaffMember> {
  return new StaffStore(homeDir).add(options);
}

export function setPassword(homeDir: string, id: string, password: string): Promise<void> {
  return new StaffStore(homeDir).setPassword(id, password);
}

export function listStaff(homeDir: string): Promise<StaffMember[]> {
  return new StaffStore(homeDir).list();
}

export function removeStaff(homeDir: string, id: string): Promise<void> {
  return new StaffStore(homeDir).remove(id);
}
