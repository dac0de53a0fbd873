// Conformance of the local FCM recorder (emulator/fcm) with FCM HTTP v1, driven through the
// official firebase-admin client wherever the client lets a request through, and through raw
// v1 JSON where firebase-admin would refuse the input before sending it.
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getMessaging, type Messaging } from 'firebase-admin/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localFcmAppOptions } from '../../shared/adapters/fcm-client-agent.ts';
import { startFcmRecorder, type FcmRecorder, type RecordedMessage } from '../../emulator/fcm/server.ts';

const PROJECT = 'demo-clinic-bridge';

interface GoogleError {
  error: { code: number; message: string; status: string; details?: Record<string, unknown>[] };
}
interface PollResult {
  messages: RecordedMessage[];
  lastSeq: number;
  unregistered: boolean;
}

let dir: string;
let recorder: FcmRecorder;
let app: App;
let messaging: Messaging;
let tokenCounter = 0;

/** A fresh, FCM-shaped registration token per test, so tests never see each other's messages. */
const newToken = () => `dev${++tokenCounter}:APA91b${'x'.repeat(20)}_-${Date.now()}`;

async function rawSend(
  base: string,
  body: unknown,
  headers: Record<string, string> = { authorization: 'Bearer local-test' },
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}/v1/projects/${PROJECT}/messages:send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const fcmErrorCode = (body: unknown) =>
  (body as GoogleError).error.details?.find(
    (d) => d['@type'] === 'type.googleapis.com/google.firebase.fcm.v1.FcmError',
  )?.['errorCode'];

async function poll(
  base: string,
  token: string,
  query: string,
): Promise<{ status: number; result: PollResult }> {
  const res = await fetch(`${base}/_recorder/tokens/${encodeURIComponent(token)}/messages?${query}`);
  return { status: res.status, result: (await res.json()) as PollResult };
}

/** Server-sent events from a fetch response, one parsed event at a time. */
async function* sseEvents(res: Response): AsyncGenerator<{ id?: string; event: string; data: string }> {
  if (!res.body) throw new Error('no body');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: { id?: string; event: string; data: string } = { event: 'message', data: '' };
      let hasData = false;
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon === 0) continue; // comment (heartbeat)
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = value;
        else if (field === 'event') event.event = value;
        else if (field === 'data') {
          event.data += value;
          hasData = true;
        }
      }
      if (hasData) yield event;
    }
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fcm-recorder-'));
  recorder = await startFcmRecorder({ port: 0, dataDir: join(dir, 'main') });
  app = initializeApp(localFcmAppOptions(recorder.url, PROJECT), `fcm-conformance-${process.pid}`);
  messaging = getMessaging(app);
});

afterAll(async () => {
  await deleteApp(app);
  await recorder.close();
  await rm(dir, { recursive: true, force: true });
});

describe('FCM recorder: FCM HTTP v1 send', () => {
  it('accepts a data-only send from firebase-admin and records it', async () => {
    const token = newToken();
    const name = await messaging.send({
      token,
      data: { kind: 'records-waiting' },
      android: { priority: 'high', ttl: 3_600_000, collapseKey: 'records' },
      apns: {
        headers: { 'apns-push-type': 'background', 'apns-priority': '5' },
        payload: { aps: { contentAvailable: true } },
      },
    });
    expect(name).toMatch(new RegExp(`^projects/${PROJECT}/messages/.+`));

    const recorded = await recorder.messages(token);
    expect(recorded).toHaveLength(1);
    const [message] = recorded;
    expect(message).toMatchObject({ name, project: PROJECT, token, data: { kind: 'records-waiting' } });
    expect(message?.seq).toBeGreaterThan(0);
    // Recorded as FCM reads it: proto field names, enum and duration forms.
    expect(message?.message).toMatchObject({
      android: { priority: 'HIGH', ttl: '3600s', collapse_key: 'records' },
      apns: { payload: { aps: { 'content-available': 1 } } },
    });

    const res = await fetch(`${recorder.url}/_recorder/messages?token=${encodeURIComponent(token)}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { messages: RecordedMessage[] }).messages).toEqual(recorded);
  });

  it('answers validate_only without recording (dryRun and both JSON spellings)', async () => {
    const token = newToken();
    await expect(messaging.send({ token, data: { kind: 'records-waiting' } }, true)).resolves.toBe(
      `projects/${PROJECT}/messages/fake_message_id`,
    );
    for (const flag of ['validate_only', 'validateOnly']) {
      const { status, json } = await rawSend(recorder.url, {
        [flag]: true,
        message: { token, data: { a: 'b' } },
      });
      expect(status).toBe(200);
      expect(json).toEqual({ name: `projects/${PROJECT}/messages/fake_message_id` });
    }
    // A dry run still validates.
    const bad = await rawSend(recorder.url, {
      validate_only: true,
      message: { token, notification: { title: 't' } },
    });
    expect(bad.status).toBe(400);
    expect(await recorder.messages(token)).toEqual([]);
  });

  it('answers UNREGISTERED for a token marked dead, which firebase-admin surfaces as registration-token-not-registered', async () => {
    const viaApi = newToken();
    await recorder.markUnregistered(viaApi);
    await expect(messaging.send({ token: viaApi, data: { kind: 'records-waiting' } })).rejects.toMatchObject({
      code: 'messaging/registration-token-not-registered',
    });
    // Dry runs check the token too, as FCM does.
    await expect(messaging.send({ token: viaApi, data: {} }, true)).rejects.toMatchObject({
      code: 'messaging/registration-token-not-registered',
    });

    const viaHttp = newToken();
    const mark = await fetch(`${recorder.url}/_recorder/tokens/${encodeURIComponent(viaHttp)}:unregister`, {
      method: 'POST',
    });
    expect(mark.status).toBe(200);
    const { status, json } = await rawSend(recorder.url, { message: { token: viaHttp, data: { a: 'b' } } });
    expect(status).toBe(404);
    expect(json).toEqual({
      error: {
        code: 404,
        message: 'Requested entity was not found.',
        status: 'NOT_FOUND',
        details: [
          { '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' },
        ],
      },
    });
    expect(await recorder.messages(viaApi)).toEqual([]);
    expect(await recorder.messages(viaHttp)).toEqual([]);
  });

  it('refuses notification blocks, because pushes are data-only and the OS must show no text', async () => {
    const token = newToken();
    const refusals = [
      messaging.send({ token, notification: { title: 'Lab results', body: 'Your results are in' } }),
      messaging.send({ token, android: { notification: { title: 'Lab results' } } }),
      messaging.send({ token, apns: { payload: { aps: { alert: { title: 'Lab results' } } } } }),
    ];
    for (const refusal of refusals) {
      const error = await refusal.then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(error?.code).toBe('messaging/invalid-argument');
      expect(error?.message).toMatch(/data-only/);
    }
    expect(await recorder.messages(token)).toEqual([]);
  });

  it('refuses topic, condition and multiple targets: only device tokens', async () => {
    await expect(messaging.send({ topic: 'all-patients', data: { a: 'b' } })).rejects.toMatchObject({
      code: 'messaging/invalid-argument',
      message: expect.stringMatching(/device registration tokens/),
    });
    await expect(messaging.send({ condition: "'a' in topics", data: { a: 'b' } })).rejects.toMatchObject({
      code: 'messaging/invalid-argument',
    });
    const both = await rawSend(recorder.url, { message: { token: newToken(), topic: 'x', data: {} } });
    expect(both.status).toBe(400);
    expect(fcmErrorCode(both.json)).toBe('INVALID_ARGUMENT');
    const none = await rawSend(recorder.url, { message: { data: { a: 'b' } } });
    expect(none.status).toBe(400);
    const badToken = await rawSend(recorder.url, { message: { token: 'not a token', data: {} } });
    expect(badToken.status).toBe(400);
  });

  it('refuses non-string data values (firebase-admin refuses them before sending; the wire check is raw JSON)', async () => {
    const token = newToken();
    // firebase-admin throws synchronously here, before any request.
    let clientError: unknown;
    try {
      await messaging.send({ token, data: { count: 3 as unknown as string } });
    } catch (error) {
      clientError = error;
    }
    expect(clientError).toMatchObject({ code: 'messaging/invalid-payload' });
    for (const value of [3, true, null, { nested: 'x' }, ['x']]) {
      const { status, json } = await rawSend(recorder.url, { message: { token, data: { count: value } } });
      expect(status).toBe(400);
      expect((json as GoogleError).error.status).toBe('INVALID_ARGUMENT');
      expect(fcmErrorCode(json)).toBe('INVALID_ARGUMENT');
      expect((json as GoogleError).error.details).toContainEqual({
        '@type': 'type.googleapis.com/google.rpc.BadRequest',
        fieldViolations: [
          { field: 'message.data.count', description: expect.stringMatching(/must be strings/) },
        ],
      });
    }
    expect(await recorder.messages(token)).toEqual([]);
  });

  it('refuses reserved data keys', async () => {
    const token = newToken();
    for (const key of ['from', 'notification', 'message_type', 'google.c.a.e', 'gcm.n.e']) {
      await expect(messaging.send({ token, data: { [key]: 'x' } })).rejects.toMatchObject({
        code: 'messaging/invalid-argument',
        message: expect.stringMatching(/reserved/),
      });
    }
    expect(await recorder.messages(token)).toEqual([]);
  });

  it('refuses a payload above 4096 bytes like FCM and accepts one at the limit', async () => {
    const token = newToken();
    await expect(messaging.send({ token, data: { k: 'x'.repeat(4096) } })).rejects.toMatchObject({
      code: 'messaging/invalid-argument',
      message: expect.stringMatching(/^Android message is too big/),
    });
    // Multi-byte characters count by their UTF-8 size.
    await expect(messaging.send({ token, data: { k: 'é'.repeat(2048) } })).rejects.toMatchObject({
      code: 'messaging/invalid-argument',
    });
    await expect(messaging.send({ token, data: { k: 'x'.repeat(4095) } })).resolves.toMatch(/^projects\//);
    expect(await recorder.messages(token)).toHaveLength(1);
  });

  it('answers 401 UNAUTHENTICATED without a bearer token', async () => {
    const token = newToken();
    const variants: Record<string, string>[] = [
      {},
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer ' },
    ];
    for (const headers of variants) {
      const { status, json } = await rawSend(recorder.url, { message: { token, data: { a: 'b' } } }, headers);
      expect(status).toBe(401);
      expect((json as GoogleError).error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
    }
    expect(await recorder.messages(token)).toEqual([]);
  });

  it('reaches the recorder through sendEach once the HTTP/1.1 transport is chosen', async () => {
    const [a, b] = [newToken(), newToken()];
    await recorder.markUnregistered(b);
    messaging.enableLegacyHttpTransport();
    const batch = await messaging.sendEach([
      { token: a, data: { kind: 'records-waiting' } },
      { token: b, data: { kind: 'records-waiting' } },
    ]);
    expect(batch.successCount).toBe(1);
    expect(batch.responses[1]?.error?.code).toBe('messaging/registration-token-not-registered');
    expect(await recorder.messages(a)).toHaveLength(1);
  });
});

describe('FCM recorder: control API for device clients', () => {
  it('long-poll returns as soon as a message arrives', async () => {
    const token = newToken();
    const started = Date.now();
    const waiting = poll(recorder.url, token, 'after=0&waitMs=10000');
    await new Promise((resolve) => setTimeout(resolve, 150));
    const name = await messaging.send({ token, data: { kind: 'records-waiting' } });
    const { status, result } = await waiting;
    expect(status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.messages.map((m) => m.name)).toEqual([name]);
    expect(result.lastSeq).toBe(result.messages[0]?.seq);
    expect(result.unregistered).toBe(false);

    // Nothing newer than lastSeq: an immediate answer without waiting, then a second message is seen.
    const again = await poll(recorder.url, token, `after=${result.lastSeq}`);
    expect(again.result).toEqual({ messages: [], lastSeq: result.lastSeq, unregistered: false });
  });

  it('long-poll times out with an empty list', async () => {
    const token = newToken();
    const started = Date.now();
    const { status, result } = await poll(recorder.url, token, 'after=0&waitMs=300');
    const elapsed = Date.now() - started;
    expect(status).toBe(200);
    expect(result).toEqual({ messages: [], lastSeq: 0, unregistered: false });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('long-poll wakes when the token is marked dead', async () => {
    const token = newToken();
    const waiting = poll(recorder.url, token, 'after=0&waitMs=10000');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await recorder.markUnregistered(token);
    expect((await waiting).result).toEqual({ messages: [], lastSeq: 0, unregistered: true });
  });

  it('refuses bad long-poll parameters with 400 and error JSON', async () => {
    const token = newToken();
    for (const query of ['waitMs=600001', 'after=-1', 'after=abc', 'limit=0', 'surprise=1']) {
      const res = await fetch(
        `${recorder.url}/_recorder/tokens/${encodeURIComponent(token)}/messages?${query}`,
      );
      expect(res.status).toBe(400);
      expect(((await res.json()) as GoogleError).error.status).toBe('INVALID_ARGUMENT');
    }
  });

  it('server-sent events replay the backlog, then deliver new messages in seq order', async () => {
    const token = newToken();
    const first = await messaging.send({ token, data: { n: '1' } });
    const controller = new AbortController();
    const res = await fetch(`${recorder.url}/_recorder/tokens/${encodeURIComponent(token)}/events?after=0`, {
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = sseEvents(res);

    const replayed = (await events.next()).value;
    expect(replayed?.event).toBe('message');
    expect((JSON.parse(replayed?.data ?? '{}') as RecordedMessage).name).toBe(first);

    const second = await messaging.send({ token, data: { n: '2' } });
    const third = await messaging.send({ token, data: { n: '3' } });
    const live = [(await events.next()).value, (await events.next()).value].map(
      (e) => JSON.parse(e?.data ?? '{}') as RecordedMessage,
    );
    expect(live.map((m) => m.name)).toEqual([second, third]);
    expect(live.map((m) => m.data['n'])).toEqual(['2', '3']);
    expect(Number(live[1]?.seq)).toBeGreaterThan(Number(live[0]?.seq));

    // Last-Event-ID resumes after the given seq.
    const resumed = await fetch(`${recorder.url}/_recorder/tokens/${encodeURIComponent(token)}/events`, {
      headers: { 'last-event-id': String(live[0]?.seq) },
      signal: controller.signal,
    });
    const resumedFirst = (await sseEvents(resumed).next()).value;
    expect(resumedFirst?.id).toBe(String(live[1]?.seq));

    await recorder.markUnregistered(token);
    expect((await events.next()).value?.event).toBe('unregistered');
    controller.abort();
  });
});

describe('FCM recorder: lifecycle and robustness', () => {
  it('keeps messages and dead tokens across a restart, and survives a torn last line', async () => {
    const dataDir = join(dir, 'restart');
    const first = await startFcmRecorder({ port: 0, dataDir });
    const [alive, dead] = [newToken(), newToken()];
    const a = await rawSend(first.url, { message: { token: alive, data: { n: '1' } } });
    const b = await rawSend(first.url, { message: { token: alive, data: { n: '2' } } });
    expect([a.status, b.status]).toEqual([200, 200]);
    await first.markUnregistered(dead);
    const before = await first.messages(alive);
    await first.close();

    // A crash mid-append leaves a line without its newline: never acknowledged, so dropped.
    await appendFile(join(dataDir, 'messages.jsonl'), '{"seq":3,"id":"torn');

    const second = await startFcmRecorder({ port: 0, dataDir });
    try {
      expect(await second.messages(alive)).toEqual(before);
      const unreg = await rawSend(second.url, { message: { token: dead, data: {} } });
      expect(unreg.status).toBe(404);
      expect(fcmErrorCode(unreg.json)).toBe('UNREGISTERED');
      const c = await rawSend(second.url, { message: { token: alive, data: { n: '3' } } });
      expect(c.status).toBe(200);
      const after = await second.messages(alive);
      expect(after.map((m) => m.seq)).toEqual([1, 2, 3]);
      expect(after.map((m) => m.data['n'])).toEqual(['1', '2', '3']);
      const lines = (await readFile(join(dataDir, 'messages.jsonl'), 'utf8')).trimEnd().split('\n');
      expect(lines.map((l) => (JSON.parse(l) as RecordedMessage).seq)).toEqual([1, 2, 3]);
    } finally {
      await second.close();
    }
  });

  it('close() answers pending long-polls, ends event streams and frees the port', async () => {
    const dataDir = join(dir, 'close');
    const local = await startFcmRecorder({ port: 0, dataDir });
    const token = newToken();
    const waiting = poll(local.url, token, 'after=0&waitMs=30000');
    const stream = await fetch(`${local.url}/_recorder/tokens/${encodeURIComponent(token)}/events`);
    const drained = (async () => {
      let count = 0;
      for await (const _event of sseEvents(stream)) count += 1;
      return count;
    })();
    await new Promise((resolve) => setTimeout(resolve, 100));

    const started = Date.now();
    await local.close();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await waiting).result).toEqual({ messages: [], lastSeq: 0, unregistered: false });
    expect(await drained).toBe(0);
    await expect(fetch(`${local.url}/_recorder/status`)).rejects.toThrow();
    // The port is free again: a new recorder can take it.
    const again = await startFcmRecorder({ port: local.port, dataDir });
    await again.close();
  });

  it('answers malformed JSON, unknown paths and wrong methods with error JSON and stays up', async () => {
    const malformed = await rawSend(recorder.url, '{"message": {"token": ');
    expect(malformed.status).toBe(400);
    expect((malformed.json as GoogleError).error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect((malformed.json as GoogleError).error.message).toMatch(/^Invalid JSON payload received/);

    for (const body of ['', 'null', '[]', '"text"', '{"message": null}', '{"message": {}, "extra": 1}']) {
      const { status, json } = await rawSend(recorder.url, body);
      expect(status).toBe(400);
      expect(fcmErrorCode(json)).toBe('INVALID_ARGUMENT');
    }
    const proto = await rawSend(recorder.url, '{"message": {"token": "t1", "data": {"__proto__": "x"}}}');
    expect(proto.status).toBe(400);
    const unknownField = await rawSend(recorder.url, { message: { token: newToken(), dta: { a: 'b' } } });
    expect((unknownField.json as GoogleError).error.message).toMatch(/Unknown name "dta"/);

    const requests: [string, RequestInit, number][] = [
      [`/v1/projects/${PROJECT}/messages:sned`, { method: 'POST' }, 404],
      ['/', { method: 'GET' }, 404],
      ['/_recorder/nothing', { method: 'GET' }, 404],
      [`/v1/projects/${PROJECT}/messages:send`, { method: 'GET' }, 405],
      [`/v1/projects/${PROJECT}/messages:send`, { method: 'PUT', body: '{}' }, 405],
      ['/_recorder/tokens/abc:unregister', { method: 'GET' }, 405],
      ['/_recorder/tokens/%E0%A4%A:unregister', { method: 'POST' }, 400],
      ['/_recorder/messages?limit=nope', { method: 'GET' }, 400],
    ];
    for (const [path, init, expected] of requests) {
      const res = await fetch(`${recorder.url}${path}`, init);
      expect(res.status, path).toBe(expected);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await res.json()) as GoogleError).error.code).toBe(expected);
    }

    // A body above Google's 1 MiB request limit is refused without reading it all.
    const huge = await rawSend(
      recorder.url,
      JSON.stringify({ message: { token: 't', data: { k: 'x'.repeat(2 << 20) } } }),
    );
    expect(huge.status).toBe(400);

    // Still serving.
    const status = await fetch(`${recorder.url}/_recorder/status`);
    expect(status.status).toBe(200);
    await expect(messaging.send({ token: newToken(), data: { kind: 'records-waiting' } })).resolves.toMatch(
      /^projects\//,
    );
  });
});
