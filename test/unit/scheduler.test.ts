import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextRun, Scheduler } from '../../emulator/functions/scheduler.ts';

describe('nextRun', () => {
  it('honours the job time zone across a daylight-saving change', () => {
    const job = { cron: '17 3 * * *', timeZone: 'Europe/Amsterdam' };
    // Winter: Amsterdam is UTC+1.
    expect(nextRun(job, new Date('2026-01-10T12:00:00Z')).toISOString()).toBe('2026-01-11T02:17:00.000Z');
    // Summer: UTC+2.
    expect(nextRun(job, new Date('2026-07-10T12:00:00Z')).toISOString()).toBe('2026-07-11T01:17:00.000Z');
  });

  it('rejects an invalid cron expression', () => {
    expect(() => nextRun({ cron: 'every day', timeZone: 'UTC' }, new Date())).toThrow();
  });
});

describe('Scheduler', () => {
  const received: IncomingHttpHeaders[] = [];
  let status = 200;
  const server = createServer((req, res) => {
    received.push(req.headers);
    res.statusCode = status;
    res.end();
  });
  let url = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/job`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('runs a job on demand with Cloud Scheduler headers and records the outcome', async () => {
    const scheduler = new Scheduler([
      { name: 'nightly', cron: '0 0 1 1 *', timeZone: 'UTC', targetUrl: url },
    ]);
    const run = await scheduler.runNow('nightly');
    scheduler.stop();
    expect(run).toMatchObject({ job: 'nightly', trigger: 'manual', status: 200 });
    expect(received.at(-1)).toMatchObject({
      'user-agent': 'Google-Cloud-Scheduler',
      'x-cloudscheduler': 'true',
      'x-cloudscheduler-jobname': 'nightly',
    });
    expect(scheduler.list()[0]?.lastRun?.status).toBe(200);
  });

  it('fires on its schedule', async () => {
    const before = received.length;
    // Every second: cron-parser accepts a seconds field.
    const scheduler = new Scheduler([{ name: 'tick', cron: '* * * * * *', timeZone: 'UTC', targetUrl: url }]);
    // The run is recorded once the target has answered, a little after it received the call.
    await expect.poll(() => scheduler.list()[0]?.lastRun?.trigger, { timeout: 10_000 }).toBe('schedule');
    scheduler.stop();
    expect(received.length).toBeGreaterThan(before);
  });

  it('reports a failing target instead of throwing', async () => {
    status = 500;
    const scheduler = new Scheduler([
      { name: 'nightly', cron: '0 0 1 1 *', timeZone: 'UTC', targetUrl: url },
    ]);
    expect((await scheduler.runNow('nightly')).status).toBe(500);
    const unreachable = new Scheduler([
      { name: 'gone', cron: '0 0 1 1 *', timeZone: 'UTC', targetUrl: 'http://127.0.0.1:1/' },
    ]);
    expect((await unreachable.runNow('gone')).status).toBe('unreachable');
    await expect(unreachable.runNow('nope')).rejects.toThrow(/No scheduled job/);
    scheduler.stop();
    unreachable.stop();
    status = 200;
  });
});
