// Pure parts of the clients: QR codes survive PNG and back, the stack environment file parses
// strictly, the ciphertext spool round-trips and removes itself, downloaded file names cannot
// escape or overwrite, media types follow the content class, and failures map to exit codes.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionKeyFailure } from '../../clients/admin/admin.ts';
import { guessMediaType } from '../../clients/connector/deliver.ts';
import { safeFileName } from '../../sdk/node.ts';
import { ApiError } from '../../clients/lib/api-client.ts';
import { describeFailure, EXIT, UsageError } from '../../clients/lib/cli.ts';
import { parseEnvText } from '../../clients/lib/environment.ts';
import { createFileSpool } from '../../clients/lib/file-spool.ts';
import { readQrPng, writeQrPng } from '../../clients/lib/qr.ts';
import { generateKeyPair } from '../../shared/core/crypto/index.ts';
import { FunctionKeyError } from '../../shared/ports/function-keys.ts';
import {
  encodeInvitationQr,
  newInvitationToken,
  newRandomId,
  ProtocolError,
} from '../../shared/core/protocol/index.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-clients-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('QR codes', () => {
  it('an invitation survives PNG and back exactly', async () => {
    const text = encodeInvitationQr({
      apiBase: 'https://api.clinic-bridge.example',
      hospitalId: 'st-example-zh',
      invitationId: newRandomId(),
      token: newInvitationToken(),
      bindingSecret: new Uint8Array(randomBytes(32)),
      hospitalPublicKey: generateKeyPair().publicKey,
      witnessKey: new Uint8Array(randomBytes(32)),
    });
    const path = join(dir, 'qr.png');
    await writeQrPng(text, path);
    expect(((await stat(path)).mode & 0o777).toString(8)).toBe('600');
    expect(await readQrPng(path)).toBe(text);
  });

  it('a PNG without a QR code, or no PNG at all, is a usage error', async () => {
    const { PNG } = await import('pngjs');
    const blank = new PNG({ width: 64, height: 64 });
    blank.data.fill(255);
    await writeFile(join(dir, 'blank.png'), PNG.sync.write(blank));
    await writeFile(join(dir, 'text.png'), 'not a png');
    await expect(readQrPng(join(dir, 'blank.png'))).rejects.toThrow(/no QR code/);
    await expect(readQrPng(join(dir, 'text.png'))).rejects.toThrow(/not a PNG/);
    await expect(readQrPng(join(dir, 'missing.png'))).rejects.toBeInstanceOf(UsageError);
  });
});

describe('stack environment', () => {
  it('parses NAME=value lines and refuses anything else', () => {
    expect(parseEnvText('# comment\nA_B=1\n\nURL=http://127.0.0.1:1/x=y\nready\n', 'f')).toEqual({
      A_B: '1',
      URL: 'http://127.0.0.1:1/x=y',
    });
    expect(() => parseEnvText('lower=1', 'f')).toThrow(/f:1/);
    expect(() => parseEnvText('A=1\nnonsense', 'f')).toThrow(/f:2/);
  });
});

describe('file spool', () => {
  it('gives back exactly what was written, in order, twice, and leaves nothing behind', async () => {
    const work = join(dir, 'work');
    await import('node:fs/promises').then((fs) => fs.mkdir(work));
    const spool = await createFileSpool(work);
    const pieces = [randomBytes(10), randomBytes(5 * 1024 * 1024), randomBytes(1)];
    for (const piece of pieces) await spool.write(new Uint8Array(piece));
    const read = async () => {
      const parts: Buffer[] = [];
      for await (const part of spool.read()) parts.push(Buffer.from(part));
      return Buffer.concat(parts);
    };
    expect((await read()).equals(Buffer.concat(pieces))).toBe(true);
    expect((await read()).equals(Buffer.concat(pieces))).toBe(true); // an upload retry
    await spool.dispose();
    expect(await readdir(work)).toEqual([]);
  });
});

describe('downloaded file names', () => {
  it('cannot leave the folder, hide, or overwrite', async () => {
    const out = join(dir, 'out');
    await import('node:fs/promises').then((fs) => fs.mkdir(out));
    expect(await safeFileName(out, '../../etc/passwd')).toBe('passwd');
    expect(await safeFileName(out, '..')).toBe('_');
    expect(await safeFileName(out, '.bashrc')).toBe('_bashrc');
    expect(await safeFileName(out, 'a\u202eb\u0007c.pdf')).toBe('a_b_c.pdf');
    expect(await safeFileName(out, 'C:\\x\\report.pdf')).toBe('C__x_report.pdf');
    await writeFile(join(out, 'report.pdf'), 'x');
    expect(await safeFileName(out, 'report.pdf')).toBe('report (1).pdf');
  });
});

describe('connector media types and exit codes', () => {
  it('guesses the media type from the extension and the content class', () => {
    expect(guessMediaType('scan.DCM', 'imaging')).toBe('application/dicom');
    expect(guessMediaType('bundle.json', 'fhir')).toBe('application/fhir+json');
    expect(guessMediaType('bundle.json', 'document')).toBe('application/json');
    expect(guessMediaType('noext', 'other')).toBe('application/octet-stream');
  });

  it('maps failures to exit codes with the stable code in the message', () => {
    expect(describeFailure(new UsageError('bad'))).toEqual({ message: 'bad', exitCode: EXIT.USAGE });
    expect(
      describeFailure(new ApiError(403, 'DEVICE_REVOKED', 'The device has been revoked.', 'ab')),
    ).toEqual({
      message: 'DEVICE_REVOKED: The device has been revoked. (trace ab)',
      exitCode: EXIT.REFUSED,
    });
    expect(describeFailure(new ApiError(503, 'UNAVAILABLE', 'x')).exitCode).toBe(EXIT.FAILURE);
    expect(describeFailure(new ProtocolError('CHUNK_INVALID')).exitCode).toBe(EXIT.REFUSED);
    expect(
      describeFailure(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })),
    ).toEqual({
      message: 'SERVICE_UNREACHABLE: cannot reach the service (is the stack running?)',
      exitCode: EXIT.FAILURE,
    });
  });
});

describe('cb-admin key provisioning failures', () => {
  it('are refused (3) with their code when retrying will not help, and failures (1) when it may', () => {
    const denied = functionKeyFailure(new FunctionKeyError('KEY_ACCESS_DENIED', 'KMS Encrypt failed'));
    expect(denied?.exitCode).toBe(EXIT.REFUSED);
    expect(denied?.message).toMatch(/^KEY_ACCESS_DENIED: KMS Encrypt failed .*OPERATIONS/);
    expect(functionKeyFailure(new FunctionKeyError('KEY_DISABLED', 'x'))?.exitCode).toBe(EXIT.REFUSED);
    expect(functionKeyFailure(new FunctionKeyError('KEY_RECORD_INVALID', 'x'))?.exitCode).toBe(EXIT.REFUSED);
    const down = functionKeyFailure(new FunctionKeyError('KEY_SERVICE_UNAVAILABLE', 'Firestore failed'));
    expect(down).toEqual({
      message: 'KEY_SERVICE_UNAVAILABLE: Firestore failed; running the command again is safe',
      exitCode: EXIT.FAILURE,
    });
    expect(functionKeyFailure(new FunctionKeyError('KEY_INTEGRITY', 'x'))?.exitCode).toBe(EXIT.FAILURE);
    expect(functionKeyFailure(new UsageError('bad'))).toBeUndefined();
  });
});
