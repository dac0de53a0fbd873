// The Notifier adapter (shared/adapters/fcm-notifier.ts) against the local FCM recorder,
// through the official firebase-admin messaging client. Transient failures come from a small
// relay in front of the recorder that fails some requests the way FCM does and passes the
// rest through unchanged.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFcmRecorder, type FcmRecorder } from '../../emulator/fcm/server.ts';
import { createFcmNotifier, type FcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import {
  NotifierError,
  type Notifier,
  type NotifierErrorCode,
  type PushData,
} from '../../shared/ports/notifier.ts';

const PROJECT = 'cb-adapters-fcm';

let dir: string;
let recorder: FcmRecorder;
let notifier: FcmNotifier;
const closers: (() => Promise<void>)[] = [];
let tokenCounter = 0;

const newToken = () => `dev${++tokenCounter}:APA91b${'x'.repeat(24)}_-${process.pid}`;

interface Relay {
  readonly url: string;
  readonly requests: number;
}

/** Answers the first `failures` sends with `status`/`body`, then relays to the recorder. */
async function startRelay(failures: number, status: number, body: unknown): Promise<Relay> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests++;
      if (requests <= failures) {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        return;
      }
      fetch(`${recorder.url}${req.url ?? '/'}`, {
        method: req.method ?? 'POST',
        headers: {
          'content-type': req.headers['content-type'] ?? 'application/json',
          authorization: req.headers.authorization ?? '',
        },
        body: Buffer.concat(chunks),
      }).then(
        async (upstream) => {
          res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text());
        },
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
  };
}

function notifierVia(url: string, attempts = 3): FcmNotifier {
  const created = createFcmNotifier({
    projectId: PROJECT,
    env: { FCM_EMULATOR_URL: url },
    retry: { attempts, baseDelayMs: 1, maxDelayMs: 5 },
  });
  closers.push(() => created.close());
  return created;
}

async function expectNotifierError(
  promise: Promise<unknown>,
  code: NotifierErrorCode,
): Promise<NotifierError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(NotifierError);
  expect((error as NotifierError).code, (error as Error).message).toBe(code);
  return error as NotifierError;
}

const fcmError = (code: number, status: string, errorCode: string) => ({
  error: {
    code,
    message: 'failure',
    status,
    details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }],
  },
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-adapters-fcm-'));
  recorder = await startFcmRecorder({ port: 0, dataDir: dir });
  notifier = notifierVia(recorder.url);
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await recorder?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('Notifier over firebase-admin messaging', () => {
  it('sends a data-only push: no notification, high priority on Android, background on iOS', async () => {
    const token = newToken();
    expect(await notifier.send(token, { kind: 'records-waiting' })).toBe('sent');
    const [recorded, ...rest] = await recorder.messages(token);
    expect(rest).toEqual([]);
    expect(recorded).toMatchObject({ project: PROJECT, token, data: { kind: 'records-waiting' } });
    expect(recorded?.message).not.toHaveProperty('notification');
    expect(recorded?.message).toMatchObject({
      android: { priority: 'HIGH', collapse_key: 'records' },
      apns: {
        headers: { 'apns-push-type': 'background', 'apns-priority': '5' },
        payload: { aps: { 'content-available': 1 } },
      },
    });
    expect(recorded?.message).not.toHaveProperty('android.notification');
    expect(recorded?.message).not.toHaveProperty('apns.payload.aps.alert');
  });

  it("reports an unregistered token as 'unregistered', without retrying", async () => {
    const token = newToken();
    await recorder.markUnregistered(token);
    expect(await notifier.send(token, { kind: 'records-waiting' })).toBe('unregistered');
    expect(await recorder.messages(token)).toEqual([]);
  });

  it('cannot send a notification block, by type or at run time', async () => {
    const token = newToken();
    const port: Notifier = notifier;
    const attempts: Promise<unknown>[] = [
      // @ts-expect-error a notification block is not push data
      port.send(token, { notification: { title: 'Lab results', body: 'Your results are in' } }),
      // @ts-expect-error `notification` is reserved even as a string
      port.send(token, { notification: 'Lab results' }),
      port.send(token, { kind: 'records-waiting', ...({ notification: 'x' } as unknown as PushData) }),
      port.send(token, { 'google.c.a.e': '1' }),
      port.send(token, { gcm_notification: 'x' }),
      port.send(token, JSON.parse('{"__proto__": "x"}') as PushData),
      // @ts-expect-error values are strings only
      port.send(token, { count: 3 }),
      port.send(token, { blob: 'x'.repeat(4096) }),
      port.send(token, ['records'] as unknown as PushData),
    ];
    for (const attempt of attempts) await expectNotifierError(attempt, 'INVALID_PAYLOAD');
    await expectNotifierError(port.send('not a token', { kind: 'records-waiting' }), 'INVALID_TOKEN');
    expect(await recorder.messages(token)).toEqual([]);
  });

  it('retries a transient failure and then delivers once', async () => {
    const relay = await startRelay(2, 500, fcmError(500, 'INTERNAL', 'INTERNAL'));
    const token = newToken();
    expect(await notifierVia(relay.url).send(token, { kind: 'records-waiting' })).toBe('sent');
    expect(relay.requests).toBe(3);
    expect(await recorder.messages(token)).toHaveLength(1);
  });

  it('gives up after the bounded number of attempts with UNAVAILABLE', async () => {
    const relay = await startRelay(100, 429, fcmError(429, 'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED'));
    const error = await expectNotifierError(
      notifierVia(relay.url, 4).send(newToken(), { kind: 'records-waiting' }),
      'UNAVAILABLE',
    );
    expect(error.attempts).toBe(4);
    expect(relay.requests).toBe(4);
  });

  it('does not retry a permanent refusal', async () => {
    const relay = await startRelay(100, 400, fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'));
    const error = await expectNotifierError(
      notifierVia(relay.url).send(newToken(), { kind: 'records-waiting' }),
      'REJECTED',
    );
    expect(error.attempts).toBe(1);
    expect(relay.requests).toBe(1);
  });

  it('refuses to reach a recorder that is not on loopback (plain HTTP)', () => {
    expect(() =>
      createFcmNotifier({ projectId: PROJECT, env: { FCM_EMULATOR_URL: 'http://fcm.example.com:8085' } }),
    ).toThrow(/loopback/);
  });
});
