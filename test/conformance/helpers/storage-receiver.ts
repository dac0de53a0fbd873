// A local CloudEvent receiver for the Storage emulator's event deliveries: it records every
// POST (headers and body) and answers with whatever status the test scripts for a subject.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedEvent {
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  status: number;
}

export interface EventReceiver {
  readonly url: string;
  readonly received: ReceivedEvent[];
  /** Answers the next `times` deliveries whose ce-subject is `subject` with `status`. */
  failNext(subject: string, status: number, times: number): void;
  /** Leaves deliveries for `subject` unanswered until the returned function is called. */
  hold(subject: string): () => void;
  /** Resolves with the deliveries for `subject` once there are at least `count`. */
  waitFor(subject: string, count: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
  close(): Promise<void>;
}

export async function startEventReceiver(): Promise<EventReceiver> {
  const received: ReceivedEvent[] = [];
  const failures = new Map<string, { status: number; left: number }>();
  const listeners = new Set<() => void>();
  const held = new Map<string, Promise<void>>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const subject = String(req.headers['ce-subject'] ?? '');
      await held.get(subject);
      const failure = failures.get(subject);
      let status = 204;
      if (failure && failure.left > 0) {
        failure.left--;
        status = failure.status;
      }
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        // recorded as empty
      }
      received.push({ headers: req.headers, body, status });
      res.writeHead(status).end();
      for (const listener of listeners) listener();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const forSubject = (subject: string) => received.filter((e) => e.headers['ce-subject'] === subject);
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    failNext(subject, status, times) {
      failures.set(subject, { status, left: times });
    },
    hold(subject) {
      let release: () => void = () => {};
      held.set(subject, new Promise((resolve) => (release = resolve)));
      return () => {
        held.delete(subject);
        release();
      };
    },
    waitFor(subject, count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const events = forSubject(subject);
          if (events.length >= count) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(events);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`only ${forSubject(subject).length} of ${count} events for ${subject}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
