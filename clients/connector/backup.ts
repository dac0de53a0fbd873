// Backup and restore of the connector's home (issue 18): one file holding everything a new
// machine needs to carry on as this connector, encrypted to the hospital's recovery key
// (recovery-key.ts), whose private half stays offline.
//
// What goes in: every regular file of the home (the hospital keys when the custody is a file;
// for a PKCS#11 custody only the keys file, which names the module and token label, because the
// keys cannot leave the token; the onboarding configuration; the delivery journal, whose 'sent'
// lines are the uploads still waiting for a receipt; the enrolment journal; the witness's
// state; sealed uploads not yet sent, uploads/<id>/ with their state and chunks, so the restored
// connector resumes them rather than losing them; the console's staff and audit files; any
// file a later version adds). What stays out:
//   work/          ciphertext spools of seals in progress: a journal line is written only after
//                  its upload, so nothing there is needed to continue (and an interrupted send
//                  was never journalled, so nothing is half-known)
//   uploads/<id>/  without a state file: a seal in progress, of which nothing reached the cloud
//   uploads/<id>/lock   the id of the process sending it, meaningless on another machine (and
//                  one that happens to be alive there would hold the upload back for ever)
//   invite.png     the QR code of the last invitation, a pairing secret that expires within the
//                  hour: issue a new invitation instead of keeping secrets in backups
//   *.tmp, *.partial, .restore-*   half-written files of atomic writes and of a restore
// Symbolic links and other special files are refused (HOME_UNSUPPORTED_ENTRY): following them
// could pull in anything on the machine, and skipping them would lose state without saying so.
//
// The file (all integers big-endian):
//   "CBBK"          4  magic: Clinic Bridge BacKup
//   version         1  0x01
//   header length   4  uint32, at most 4 KiB
//   header          n  JSON, readable without the key (below): format, backupId, createdAt,
//                      hospitalId, custody, the recovery key's fingerprint, the wrap key,
//                      chunkSize. No secret and no patient data.
//   wrapped length  2  uint16
//   wrapped key     m  the content key, wrapped for the recovery public key (Themis Secure
//                      Message, shared/core/crypto key-wrap) under a fresh wrap key whose private
//                      half is destroyed once wrapped: the connector cannot read its own backups
//   body               the archive, sealed as a Themis Secure Cell record (record-cell.ts) in
//                      chunks of chunkSize + 45 bytes (the last one shorter or equal)
// The record id that both the wrapped key and every chunk are bound to is
//   "cb-backup." + base64url(SHA-256(magic ‖ version ‖ header length ‖ header))
// so a changed header, a swapped wrapped key or body, a flipped, dropped or appended byte all
// fail authentication (BACKUP_CORRUPT). A recovery key other than the one the header names is
// BACKUP_WRONG_KEY before anything is decrypted.
//
// The archive (plaintext inside the body): uint32 manifest length, the manifest JSON (home
// format, hospital id, custody, token reference, and each file's path and size), then each
// file's bytes in manifest order. Files are read through one open descriptor each, so a file
// replaced by an atomic rename while the backup runs is read whole as it was; the journals are
// append-only JSON lines and are cut after their last complete line, so a connector still
// running while it is backed up yields a consistent home.
import { randomBytes } from 'node:crypto';
import {
  chmod,
  link,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  stat,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import {
  createKeyWrapper,
  decryptRecordStream,
  DEFAULT_CHUNK_SIZE,
  encryptRecordStream,
  generateContentKey,
  importPublicKey,
  isCryptoError,
  MAX_CHUNK_SIZE,
  MAX_WRAPPED_KEY_LENGTH,
  CHUNK_OVERHEAD,
  unwrapContentKey,
  type KeyPair,
  type PublicKey,
} from '../../shared/core/crypto/index.ts';
import { concatBytes, sha256, toBase64Url } from '../../shared/core/bytes.ts';
import { RefusedError, UsageError } from '../lib/cli.ts';
import { parseRecoveryKey, parseRecoveryPublicKey } from './recovery-key.ts';

export const BACKUP_FORMAT = 'clinic-bridge/connector-backup/v1';
export const HOME_ARCHIVE_FORMAT = 'clinic-bridge/connector-home/v1';
const MAGIC = new TextEncoder().encode('CBBK');
const VERSION = 1;
const PREFIX_LENGTH = MAGIC.length + 1 + 4;
const MAX_HEADER_BYTES = 4096;
const MAX_MANIFEST_BYTES = 1024 * 1024;
const READ_BYTES = 1024 * 1024;
const KEYS_FILE = 'hospital-keys.json';
/** Sealed uploads not yet sent (pending-uploads.ts). */
const UPLOADS_DIR = 'uploads';

export type BackupErrorCode =
  /** Not a backup, or one that was changed, truncated or extended after it was written. */
  | 'BACKUP_CORRUPT'
  /** The recovery key given is not the one the backup was made for. */
  | 'BACKUP_WRONG_KEY'
  /** A backup of a later format than this connector reads. */
  | 'BACKUP_VERSION_UNSUPPORTED'
  | 'BACKUP_UNREADABLE'
  /** Backups are create-only: the output file exists. */
  | 'BACKUP_EXISTS'
  /** Restore goes only into an empty (or new) directory. */
  | 'HOME_NOT_EMPTY'
  /** The directory to back up holds no connector (no hospital keys file). */
  | 'HOME_NOT_CONNECTOR'
  /** A symbolic link or special file in the home, or a name the archive cannot carry. */
  | 'HOME_UNSUPPORTED_ENTRY';

export class BackupError extends RefusedError {
  constructor(code: BackupErrorCode, message: string) {
    super(code, message);
    this.name = 'BackupError';
  }
}

const headerSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  backupId: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  createdAt: z.iso.datetime(),
  hospitalId: z.string().min(1).max(64),
  custody: z.enum(['file', 'pkcs11']),
  /** PublicKey.fingerprint of the recovery key the content key is wrapped for. */
  recoveryKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** The wrap key's public half (the device-side input of unwrapContentKey). */
  wrapKey: z.string().min(1).max(128),
  chunkSize: z.int().min(1).max(MAX_CHUNK_SIZE),
});
export type BackupHeader = z.output<typeof headerSchema>;

const manifestSchema = z.strictObject({
  format: z.literal(HOME_ARCHIVE_FORMAT),
  hospitalId: z.string().min(1).max(64),
  custody: z.enum(['file', 'pkcs11']),
  /** For a PKCS#11 custody: where the keys are. The backup holds no key material then. */
  token: z.strictObject({ module: z.string().min(1), tokenLabel: z.string().min(1) }).optional(),
  files: z.array(z.strictObject({ path: z.string().min(1).max(1024), size: z.int().min(0) })).max(10_000),
});
type Manifest = z.output<typeof manifestSchema>;

/** Only what backup needs from the keys file; home.ts validates the rest when it opens it. */
const keysFileSchema = z.looseObject({
  hospitalId: z.string().min(1).max(64),
  custody: z.enum(['file', 'pkcs11']),
  module: z.string().min(1).optional(),
  tokenLabel: z.string().min(1).optional(),
});

export interface BackupSummary {
  readonly backupId: string;
  readonly createdAt: string;
  readonly hospitalId: string;
  readonly custody: 'file' | 'pkcs11';
  /** False for a PKCS#11 custody: the keys stay in the token, the backup names the token. */
  readonly keysIncluded: boolean;
  /** Paths inside the home, as archived. */
  readonly files: readonly string[];
  /** Paths left out on purpose (see the list at the top of this file). */
  readonly excluded: readonly string[];
  readonly bytes: number;
}

export interface RestoreSummary {
  readonly backupId: string;
  /** When the backup was made: anything the connector did after it is not in the restored home. */
  readonly createdAt: string;
  readonly hospitalId: string;
  readonly custody: 'file' | 'pkcs11';
  readonly token?: { readonly module: string; readonly tokenLabel: string };
  readonly files: readonly string[];
}

// ---- Backup ----

/** Whether a home entry (a path relative to the home, '/'-separated) is left out on purpose. */
export function excludedFromBackup(path: string): boolean {
  const top = path.split('/')[0]!;
  const name = path.split('/').at(-1)!;
  return (
    top === 'work' ||
    top.startsWith('.restore-') ||
    path === 'invite.png' ||
    name.endsWith('.tmp') ||
    name.endsWith('.partial') ||
    /^uploads\/[^/]+\/lock$/.test(path)
  );
}

/** A path the archive can carry: relative, '/'-separated, no empty, '.' or '..' segment. */
function isArchivePath(path: string): boolean {
  if (path.length === 0 || path.length > 1024 || path.includes('\0') || path.includes('\\')) return false;
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

interface OpenedFile {
  readonly path: string;
  readonly handle: FileHandle;
  readonly size: number;
}

/** Where the last complete line of an append-only journal ends (0 if none is complete). */
async function completeLinesLength(handle: FileHandle, size: number): Promise<number> {
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - 64 * 1024);
    const block = Buffer.alloc(end - start);
    await handle.read(block, 0, block.length, start);
    const newline = block.lastIndexOf(0x0a);
    if (newline >= 0) return start + newline + 1;
    end = start;
  }
  return 0;
}

async function readRange(handle: FileHandle, size: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    const { bytesRead } = await handle.read(bytes, done, size - done, done);
    if (bytesRead === 0) throw new Error('a file shrank while it was backed up');
    done += bytesRead;
  }
  return bytes;
}

/** Opens `path` for reading, or undefined if it is not there (any more). */
async function openIfPresent(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

async function opened(path: string, handle: FileHandle): Promise<OpenedFile> {
  const { size } = await handle.stat();
  return {
    path,
    handle,
    size: path.endsWith('.jsonl') ? await completeLinesLength(handle, size) : size,
  };
}

/**
 * Sealed uploads waiting to be sent or resumed (pending-uploads.ts), so that the restored
 * connector resumes them instead of losing them. Only folders with a state file: it is written
 * after its chunks are complete on disk, so it is opened first and the chunks then are whole; a
 * folder without one is a seal in progress, none of which reached the cloud. The lock (a process
 * id on this machine) means nothing on another and is left out. An upload that finishes while
 * the backup runs vanishes here, and its journal line, read after these, is in the backup.
 */
async function openPendingUploads(home: string, files: OpenedFile[], excluded: string[]): Promise<void> {
  let names: string[];
  try {
    names = await readdir(join(home, UPLOADS_DIR));
  } catch {
    return;
  }
  for (const name of names.sort()) {
    const dir = `${UPLOADS_DIR}/${name}`;
    if (!isArchivePath(dir)) {
      throw new BackupError(
        'HOME_UNSUPPORTED_ENTRY',
        `${dir} in the home has a name the archive cannot carry`,
      );
    }
    const state = await openIfPresent(join(home, dir, 'state.json'));
    if (!state) {
      excluded.push(dir);
      continue;
    }
    const chunks = await openIfPresent(join(home, dir, 'chunks.bin'));
    if (!chunks) {
      await state.close();
      continue;
    }
    files.push(await opened(`${dir}/state.json`, state), await opened(`${dir}/chunks.bin`, chunks));
  }
}

/** Every file of the home to archive (opened), and what was left out. */
async function openHomeFiles(home: string): Promise<{ files: OpenedFile[]; excluded: string[] }> {
  const files: OpenedFile[] = [];
  const excluded: string[] = [];
  try {
    // Pending uploads before the journal: see openPendingUploads.
    await openPendingUploads(home, files, excluded);
    const entries = await readdir(home, { withFileTypes: true, recursive: true }).catch(() => {
      throw new BackupError('HOME_NOT_CONNECTOR', `cannot read the connector home ${home}`);
    });
    for (const entry of entries.sort((a, b) =>
      join(a.parentPath, a.name).localeCompare(join(b.parentPath, b.name)),
    )) {
      const path = relative(home, join(entry.parentPath, entry.name)).split(sep).join('/');
      if (path === UPLOADS_DIR || path.startsWith(`${UPLOADS_DIR}/`)) continue;
      if (excludedFromBackup(path)) {
        if (!path.includes('/') || !excludedFromBackup(path.split('/')[0]!)) excluded.push(path);
        continue;
      }
      if (entry.isDirectory()) continue;
      if (!entry.isFile() || !isArchivePath(path)) {
        throw new BackupError(
          'HOME_UNSUPPORTED_ENTRY',
          `${path} in the home is not a regular file (links and special files are not backed up)`,
        );
      }
      // Gone since it was listed (a temporary file renamed into place): nothing to keep.
      const handle = await openIfPresent(join(home, path));
      if (handle) files.push(await opened(path, handle));
    }
  } catch (error) {
    await Promise.all(files.map((file) => file.handle.close()));
    throw error;
  }
  files.sort((a, b) => a.path.localeCompare(b.path));
  return { files, excluded };
}

function uint32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, false);
  return bytes;
}

function uint16(value: number): Uint8Array {
  const bytes = new Uint8Array(2);
  new DataView(bytes.buffer).setUint16(0, value, false);
  return bytes;
}

/** The record id every part of a backup is bound to (see the layout at the top). */
function backupRecordId(prefixAndHeader: Uint8Array): string {
  return `cb-backup.${toBase64Url(sha256(prefixAndHeader))}`;
}

async function* archive(manifest: Manifest, files: readonly OpenedFile[]): AsyncGenerator<Uint8Array> {
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  yield uint32(manifestBytes.length);
  yield manifestBytes;
  for (const file of files) {
    let position = 0;
    while (position < file.size) {
      // A fresh buffer each time: the sealer may still hold the previous one.
      const piece = new Uint8Array(Math.min(READ_BYTES, file.size - position));
      const { bytesRead } = await file.handle.read(piece, 0, piece.length, position);
      if (bytesRead === 0) throw new Error(`${file.path} shrank while it was backed up`);
      position += bytesRead;
      yield bytesRead === piece.length ? piece : piece.subarray(0, bytesRead);
    }
  }
}

/**
 * Writes a backup of the connector home `homeDir` to `outFile` (create-only, owner-only),
 * encrypted to `recoveryPublicKey`. Safe while the connector runs. Opens no key custody.
 */
export async function backupHome(
  homeDir: string,
  recoveryPublicKey: PublicKey | string,
  outFile: string,
  options: { readonly now?: Date; readonly chunkSize?: number } = {},
): Promise<BackupSummary> {
  const home = resolve(homeDir);
  const out = resolve(outFile);
  const recipient =
    typeof recoveryPublicKey === 'string' ? parseRecoveryPublicKey(recoveryPublicKey) : recoveryPublicKey;
  if (out === home || out.startsWith(`${home}${sep}`)) {
    throw new UsageError('write the backup outside the connector home (it would back itself up next time)');
  }
  if (
    await stat(out).then(
      () => true,
      () => false,
    )
  ) {
    throw new BackupError('BACKUP_EXISTS', `${out} exists; backups are never overwritten`);
  }

  const { files, excluded } = await openHomeFiles(home);
  const temp = `${out}.${randomBytes(6).toString('hex')}.partial`;
  let tempHandle: FileHandle | undefined;
  try {
    const keysFile = files.find((file) => file.path === KEYS_FILE);
    if (!keysFile) {
      throw new BackupError('HOME_NOT_CONNECTOR', `${home} holds no ${KEYS_FILE}: not a connector home`);
    }
    let keys: z.output<typeof keysFileSchema>;
    try {
      keys = keysFileSchema.parse(
        JSON.parse(new TextDecoder().decode(await readRange(keysFile.handle, keysFile.size))),
      );
    } catch {
      throw new BackupError('HOME_NOT_CONNECTOR', `${KEYS_FILE} in ${home} is not a hospital keys file`);
    }
    const manifest: Manifest = {
      format: HOME_ARCHIVE_FORMAT,
      hospitalId: keys.hospitalId,
      custody: keys.custody,
      ...(keys.custody === 'pkcs11' && keys.module && keys.tokenLabel
        ? { token: { module: keys.module, tokenLabel: keys.tokenLabel } }
        : {}),
      files: files.map(({ path, size }) => ({ path, size })),
    };

    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const wrapper = createKeyWrapper();
    const contentKey = generateContentKey();
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      backupId: toBase64Url(randomBytes(16)),
      createdAt: (options.now ?? new Date()).toISOString(),
      hospitalId: keys.hospitalId,
      custody: keys.custody,
      recoveryKey: recipient.fingerprint,
      wrapKey: wrapper.publicKey.toBase64Url(),
      chunkSize,
    };
    const headerBytes = new TextEncoder().encode(JSON.stringify(header));
    const prefix = concatBytes([MAGIC, Uint8Array.of(VERSION), uint32(headerBytes.length), headerBytes]);
    const recordId = backupRecordId(prefix);
    let wrapped: Uint8Array;
    try {
      wrapped = wrapper.wrap(contentKey, { recordId, device: recipient });
    } finally {
      wrapper.destroy();
    }

    tempHandle = await open(temp, 'wx', 0o600);
    let bytes = 0;
    const write = async (piece: Uint8Array) => {
      await tempHandle!.write(piece);
      bytes += piece.length;
    };
    await write(prefix);
    await write(uint16(wrapped.length));
    await write(wrapped);
    for await (const chunk of encryptRecordStream(archive(manifest, files), {
      key: contentKey,
      recordId,
      chunkSize,
    })) {
      await write(chunk);
    }
    await tempHandle.sync();
    await tempHandle.close();
    tempHandle = undefined;
    // link() refuses an existing name: the backup appears complete, and never over another file.
    await link(temp, out).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') {
        throw new BackupError('BACKUP_EXISTS', `${out} exists; backups are never overwritten`);
      }
      throw error;
    });
    return {
      backupId: header.backupId,
      createdAt: header.createdAt,
      hospitalId: header.hospitalId,
      custody: header.custody,
      keysIncluded: header.custody === 'file',
      files: manifest.files.map((file) => file.path),
      excluded,
      bytes,
    };
  } finally {
    await tempHandle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    await Promise.all(files.map((file) => file.handle.close().catch(() => undefined)));
  }
}

// ---- Reading a backup ----

function corrupt(message: string): BackupError {
  return new BackupError('BACKUP_CORRUPT', message);
}

interface OpenedBackup {
  readonly handle: FileHandle;
  readonly header: BackupHeader;
  readonly recordId: string;
  readonly wrapped: Uint8Array;
  /** Where the sealed body starts. */
  readonly bodyOffset: number;
}

async function openBackup(path: string): Promise<OpenedBackup> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch {
    throw new BackupError('BACKUP_UNREADABLE', `cannot read the backup ${path}`);
  }
  try {
    const read = async (offset: number, length: number): Promise<Uint8Array> => {
      const bytes = new Uint8Array(length);
      const { bytesRead } = await handle.read(bytes, 0, length, offset);
      if (bytesRead !== length) throw corrupt('the backup ends early');
      return bytes;
    };
    const start = await read(0, PREFIX_LENGTH);
    if (!MAGIC.every((byte, index) => start[index] === byte)) throw corrupt('not a connector backup');
    if (start[MAGIC.length] !== VERSION) {
      throw new BackupError(
        'BACKUP_VERSION_UNSUPPORTED',
        `backup format version ${start[MAGIC.length]} is not one this connector reads (${VERSION})`,
      );
    }
    const headerLength = new DataView(start.buffer).getUint32(MAGIC.length + 1, false);
    if (headerLength === 0 || headerLength > MAX_HEADER_BYTES) throw corrupt('the backup header is damaged');
    const headerBytes = await read(PREFIX_LENGTH, headerLength);
    let header: BackupHeader;
    try {
      header = headerSchema.parse(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes)));
    } catch {
      throw corrupt('the backup header is damaged');
    }
    const wrappedAt = PREFIX_LENGTH + headerLength;
    const wrappedLength = new DataView((await read(wrappedAt, 2)).buffer).getUint16(0, false);
    if (wrappedLength === 0 || wrappedLength > MAX_WRAPPED_KEY_LENGTH)
      throw corrupt('the wrapped key is damaged');
    const wrapped = await read(wrappedAt + 2, wrappedLength);
    return {
      handle,
      header,
      recordId: backupRecordId(concatBytes([start, headerBytes])),
      wrapped,
      bodyOffset: wrappedAt + 2 + wrappedLength,
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** A backup's cleartext header (no key needed): which hospital, when, for which recovery key. */
export async function readBackupHeader(path: string): Promise<BackupHeader> {
  const backup = await openBackup(path);
  await backup.handle.close();
  return backup.header;
}

/** The sealed body as the record-cell chunks it was written in (their size is fixed). */
async function* bodyChunks(backup: OpenedBackup): AsyncGenerator<Uint8Array> {
  const size = backup.header.chunkSize + CHUNK_OVERHEAD;
  let position = backup.bodyOffset;
  for (;;) {
    const chunk = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await backup.handle.read(chunk, filled, size - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled === 0) return;
    position += filled;
    yield filled === size ? chunk : chunk.subarray(0, filled);
    if (filled < size) return;
  }
}

/** Reads exact byte counts from a stream of plaintext pieces. */
class PieceReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #held: Uint8Array = new Uint8Array(0);

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** Up to `max` bytes (at least one), or undefined at the end. */
  async next(max: number): Promise<Uint8Array | undefined> {
    if (this.#held.length === 0) {
      const step = await this.#source.next();
      if (step.done) return undefined;
      this.#held = step.value;
      if (this.#held.length === 0) return this.next(max);
    }
    const piece = this.#held.subarray(0, max);
    this.#held = this.#held.subarray(piece.length);
    return piece;
  }

  async exactly(length: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < length) {
      const piece = await this.next(length - got);
      if (!piece) throw corrupt('the archive ends early');
      parts.push(piece);
      got += piece.length;
    }
    return concatBytes(parts);
  }
}

function unwrapFor(backup: OpenedBackup, recovery: KeyPair) {
  if (recovery.publicKey.fingerprint !== backup.header.recoveryKey) {
    throw new BackupError(
      'BACKUP_WRONG_KEY',
      'this backup was made for another recovery key (its header names the key by fingerprint)',
    );
  }
  let wrapKey: PublicKey;
  try {
    wrapKey = importPublicKey(backup.header.wrapKey);
  } catch {
    throw corrupt('the backup header is damaged');
  }
  try {
    return unwrapContentKey(backup.wrapped, { recordId: backup.recordId, device: recovery, wrapKey });
  } catch (error) {
    // The header names this very key, so a key that does not open is a changed file.
    if (isCryptoError(error)) throw corrupt('the backup was changed after it was written');
    throw error;
  }
}

/** Whether `dir` is missing or an empty directory; creates it (owner-only) if missing. */
async function prepareTarget(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return;
  }
  if (!info.isDirectory()) throw new BackupError('HOME_NOT_EMPTY', `${dir} exists and is not a directory`);
  if ((await readdir(dir)).length > 0) {
    throw new BackupError(
      'HOME_NOT_EMPTY',
      `${dir} is not empty: restore only into a new or empty directory, never over a connector`,
    );
  }
  await chmod(dir, 0o700);
}

/**
 * Restores a backup into `newHomeDir` (new or empty), owner-only. `recoveryKey` is the key pair
 * or the private half's text. Nothing appears in the target unless the whole backup verified.
 */
export async function restoreHome(
  backupFile: string,
  recoveryKey: KeyPair | string,
  newHomeDir: string,
): Promise<RestoreSummary> {
  const recovery = typeof recoveryKey === 'string' ? parseRecoveryKey(recoveryKey) : recoveryKey;
  const target = resolve(newHomeDir);
  const backup = await openBackup(backupFile);
  const stage = join(target, `.restore-${randomBytes(6).toString('hex')}`);
  let staged = false;
  try {
    const contentKey = unwrapFor(backup, recovery);
    await prepareTarget(target);
    await mkdir(stage, { mode: 0o700 });
    staged = true;
    const reader = new PieceReader(
      decryptRecordStream(bodyChunks(backup), {
        key: contentKey,
        recordId: backup.recordId,
        maxChunkSize: backup.header.chunkSize,
      }),
    );
    let manifest: Manifest;
    try {
      const manifestLength = new DataView((await reader.exactly(4)).buffer).getUint32(0, false);
      if (manifestLength > MAX_MANIFEST_BYTES) throw corrupt('the archive manifest is damaged');
      manifest = manifestSchema.parse(
        JSON.parse(new TextDecoder().decode(await reader.exactly(manifestLength))),
      );
    } catch (error) {
      if (error instanceof BackupError || isCryptoError(error)) throw error;
      throw corrupt('the archive manifest is damaged');
    }
    const paths = new Set<string>();
    for (const file of manifest.files) {
      if (!isArchivePath(file.path) || excludedFromBackup(file.path) || paths.has(file.path)) {
        throw corrupt('the archive names a file it cannot hold');
      }
      paths.add(file.path);
    }
    if (manifest.hospitalId !== backup.header.hospitalId || manifest.custody !== backup.header.custody) {
      throw corrupt('the archive does not match its header');
    }
    if (!paths.has(KEYS_FILE)) throw corrupt(`the archive holds no ${KEYS_FILE}`);

    for (const file of manifest.files) {
      const path = join(stage, ...file.path.split('/'));
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const handle = await open(path, 'wx', 0o600);
      try {
        let left = file.size;
        while (left > 0) {
          const piece = await reader.next(Math.min(left, READ_BYTES));
          if (!piece) throw corrupt('the archive ends early');
          await handle.write(piece);
          left -= piece.length;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    // Only now has the last chunk (marked last) opened: the archive is complete and authentic.
    if ((await reader.next(1)) !== undefined) throw corrupt('the archive has data after its last file');

    for (const name of await readdir(stage)) await rename(join(stage, name), join(target, name));
    await rm(stage, { recursive: true, force: true });
    staged = false;
    return {
      backupId: backup.header.backupId,
      createdAt: backup.header.createdAt,
      hospitalId: manifest.hospitalId,
      custody: manifest.custody,
      ...(manifest.token ? { token: manifest.token } : {}),
      files: manifest.files.map((file) => file.path),
    };
  } catch (error) {
    if (isCryptoError(error))
      throw corrupt('the backup was changed, truncated or extended after it was written');
    throw error;
  } finally {
    if (staged) await rm(stage, { recursive: true, force: true }).catch(() => undefined);
    await backup.handle.close().catch(() => undefined);
  }
}
