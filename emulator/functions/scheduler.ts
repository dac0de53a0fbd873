// A local Cloud Scheduler: fires each job on its cron expression in its time zone, as the
// job that infra/ creates does, and on demand. Jobs reach their function over HTTP with
// the headers Cloud Scheduler sends, so the function cannot tell the difference.
import { CronExpressionParser } from 'cron-parser';

export interface ScheduledJob {
  readonly name: string;
  readonly cron: string;
  readonly timeZone: string;
  readonly targetUrl: string;
}

export interface JobRun {
  readonly job: string;
  readonly trigger: 'schedule' | 'manual';
  readonly scheduledFor: string;
  readonly status: number | 'unreachable';
  readonly finishedAt: string;
}

export interface JobStatus extends ScheduledJob {
  readonly nextRunAt: string;
  readonly lastRun?: JobRun;
}

// setTimeout cannot wait longer than about 24.8 days; longer waits are re-armed.
const MAX_TIMER_MS = 2_147_483_647;

export class Scheduler {
  readonly #jobs = new Map<
    string,
    { job: ScheduledJob; timer?: NodeJS.Timeout; next: Date; lastRun?: JobRun }
  >();
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #now: () => Date;
  #stopped = false;

  constructor(
    jobs: readonly ScheduledJob[],
    options: { log?: (entry: Record<string, unknown>) => void; now?: () => Date } = {},
  ) {
    this.#log = options.log ?? (() => {});
    this.#now = options.now ?? (() => new Date());
    for (const job of jobs) {
      this.#jobs.set(job.name, { job, next: nextRun(job, this.#now()) });
      this.#arm(job.name);
    }
  }

  list(): JobStatus[] {
    return [...this.#jobs.values()].map(({ job, next, lastRun }) => ({
      ...job,
      nextRunAt: next.toISOString(),
      ...(lastRun ? { lastRun } : {}),
    }));
  }

  has(name: string): boolean {
    return this.#jobs.has(name);
  }

  /** Runs a job now, as `gcloud scheduler jobs run` does, and reports the outcome. */
  async runNow(name: string): Promise<JobRun> {
    const entry = this.#jobs.get(name);
    if (!entry) throw new Error(`No scheduled job named "${name}".`);
    return this.#fire(name, 'manual', this.#now());
  }

  stop(): void {
    this.#stopped = true;
    for (const entry of this.#jobs.values()) clearTimeout(entry.timer);
  }

  #arm(name: string): void {
    const entry = this.#jobs.get(name);
    if (!entry || this.#stopped) return;
    const wait = Math.max(0, entry.next.getTime() - this.#now().getTime());
    entry.timer = setTimeout(
      () => {
        if (wait > MAX_TIMER_MS) return this.#arm(name);
        const scheduledFor = entry.next;
        entry.next = nextRun(entry.job, new Date(scheduledFor.getTime() + 1_000));
        this.#arm(name);
        void this.#fire(name, 'schedule', scheduledFor);
      },
      Math.min(wait, MAX_TIMER_MS),
    );
    entry.timer.unref();
  }

  async #fire(name: string, trigger: JobRun['trigger'], scheduledFor: Date): Promise<JobRun> {
    const entry = this.#jobs.get(name)!;
    let status: JobRun['status'];
    try {
      const response = await fetch(entry.job.targetUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Google-Cloud-Scheduler',
          'x-cloudscheduler': 'true',
          'x-cloudscheduler-jobname': name,
          'x-cloudscheduler-scheduletime': scheduledFor.toISOString(),
        },
        body: '{}',
      });
      await response.arrayBuffer();
      status = response.status;
    } catch {
      status = 'unreachable';
    }
    const run: JobRun = {
      job: name,
      trigger,
      scheduledFor: scheduledFor.toISOString(),
      status,
      finishedAt: this.#now().toISOString(),
    };
    entry.lastRun = run;
    this.#log({ severity: status === 200 ? 'INFO' : 'WARNING', message: 'scheduled job ran', ...run });
    return run;
  }
}

export function nextRun(job: Pick<ScheduledJob, 'cron' | 'timeZone'>, after: Date): Date {
  return CronExpressionParser.parse(job.cron, { tz: job.timeZone, currentDate: after }).next().toDate();
}
