import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog } from '../../shared/runtime/catalog.ts';
import { startFunctionsHost, type FunctionsHost } from '../../emulator/functions/host.ts';
import { received } from '../fixtures/functions/on-upload/function.ts';
import { runs } from '../fixtures/functions/nightly/function.ts';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const catalog = loadCatalog(join(fixtures, 'catalog.json'));

/** Posts a Storage finalize CloudEvent in binary content mode, as Eventarc does. */
function postStorageEvent(
  url: string,
  id: string,
  object: { name: string; bucket: string; generation?: string },
) {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.storage.object.v1.finalized',
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${object.bucket}`,
      'ce-subject': `objects/${object.name}`,
      'ce-id': id,
      'ce-time': new Date().toISOString(),
    },
    body: JSON.stringify(object),
  });
}

describe('functions host', () => {
  let host: FunctionsHost;
  beforeAll(async () => {
    host = await startFunctionsHost({
      projectId: 'host-test',
      catalog,
      functionsDir: join(fixtures, 'functions'),
      env: { SOME_SETTING: 'x' },
    });
  });
  afterAll(() => host?.close());

  it('binds to loopback only and lists what it serves', async () => {
    expect(host.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const listing = (await (await fetch(`${host.url}/_host/functions`)).json()) as {
      functions: { name: string; signature: string }[];
    };
    expect(listing.functions.map((fn) => `${fn.name}:${fn.signature}`)).toEqual(
      expect.arrayContaining(['echo:http', 'on-upload:cloudevent', 'nightly:http']),
    );
  });

  it('routes HTTP functions by path, with the rest of the path and the query', async () => {
    const response = await fetch(`${host.url}/echo/things/42?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      method: 'POST',
      path: '/things/42',
      query: { x: '1' },
      body: { hello: 'world' },
      functionName: 'echo',
      kService: 'echo',
    });
  });

  it('gives each function its own service account identity', async () => {
    const body = (await (await fetch(`${host.url}/echo`)).json()) as Record<string, string>;
    expect(body.serviceAccountEmail).toBe('fx-echo@host-test.iam.gserviceaccount.com');
    expect(body.localPrincipal).toBe('serviceAccount:fx-echo@host-test.iam.gserviceaccount.com');
  });

  it('delivers a binary-mode CloudEvent to an event function', async () => {
    const response = await postStorageEvent(`${host.url}/on-upload`, 'evt-1', {
      name: 'a.bin',
      bucket: 'b',
      generation: '1',
    });
    expect(response.status).toBe(204);
    expect(received.at(-1)).toMatchObject({ id: 'evt-1', subject: 'objects/a.bin', data: { name: 'a.bin' } });
  });

  it('answers a failing event function with a 5xx so the sender retries', async () => {
    const response = await postStorageEvent(`${host.url}/on-upload`, 'evt-2', {
      name: 'flaky/x',
      bucket: 'b',
    });
    expect(response.status).toBeGreaterThanOrEqual(500);
  });

  it('runs a scheduled job on demand and lists its next run', async () => {
    const jobs = (await (await fetch(`${host.url}/_scheduler/jobs`)).json()) as {
      jobs: { name: string; cron: string; timeZone: string; nextRunAt: string }[];
    };
    expect(jobs.jobs).toEqual([
      expect.objectContaining({ name: 'nightly', cron: '0 3 * * *', timeZone: 'Europe/Amsterdam' }),
    ]);
    const before = runs.length;
    const run = await fetch(`${host.url}/_scheduler/jobs/nightly:run`, { method: 'POST' });
    expect(await run.json()).toMatchObject({ job: 'nightly', status: 200, trigger: 'manual' });
    expect(runs.length).toBe(before + 1);
    expect(runs.at(-1)?.jobName).toBe('nightly');
  });

  it('answers unknown paths and jobs with a JSON 404', async () => {
    const missing = await fetch(`${host.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'FUNCTION_NOT_FOUND' } });
    const job = await fetch(`${host.url}/_scheduler/jobs/nope:run`, { method: 'POST' });
    expect(job.status).toBe(404);
  });

  it('refuses a function that the catalog does not describe', async () => {
    const { functions: _dropped, ...rest } = catalog;
    await expect(
      startFunctionsHost({
        projectId: 'host-test',
        catalog: { ...rest, functions: {} },
        functionsDir: join(fixtures, 'functions'),
        env: {},
      }),
    ).rejects.toThrow(/no entry in infra\/catalog.json/);
  });
});
