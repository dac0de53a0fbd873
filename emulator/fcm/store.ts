// What the FCM recorder remembers: every accepted message and every token marked dead.
// Both live in memory and in two append-only JSONL files under dataDir, so a restart keeps
// them. Writes go through one queue, so sequence numbers, file order and memory order agree,
// and a caller only hears "recorded" once its line is in the file.
import { randomBytes } from 'node:crypto';
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

export interface RecordedMessage {
  /** Monotonically increasing over the whole recorder, starting at 1; survives restarts. */
  seq: number;
  /** The last segment of `name`. */
  id: string;
  /** What `messages:send` returned: `projects/{project}/messages/{id}`. */
  name: string;
  project: string;
  token: string;
  /** `message.data`, or `{}` when the message had none. */
  data: Record<string, string>;
  /** The whole message as FCM reads it, with snake_case field names. */
  message: Record<string, unknown>;
  /** ISO 8601 time of receipt. */
  receivedAt: string;
}

export type StoreEvent =
  { type: 'message'; message: RecordedMessage } | { type: 'unregistered'; token: string };

export interface ListFilter {
  token?: string;
  /** Only messages with a larger seq. */
  after?: number;
  limit?: number;
}

const recordedMessageSchema = z.object({
  seq: z.number().int().positive(),
  id: z.string(),
  name: z.string(),
  project: z.string(),
  token: z.string(),
  data: z.record(z.string(), z.string()),
  message: z.record(z.string(), z.unknown()),
  receivedAt: z.string(),
});

const tokenEventSchema = z.object({ token: z.string(), state: z.literal('unregistered'), at: z.string() });

export const MESSAGES_FILE = 'messages.jsonl';
export const TOKENS_FILE = 'tokens.jsonl';

type Log = (entry: Record<string, unknown>) => void;

/**
 * Reads a JSONL file. A torn last line (a crash mid-append, never acknowledged) is cut off,
 * so the next append starts on a fresh line. Other bad lines are skipped with a warning.
 */
async function loadJsonl<T>(
  path: string,
  schema: z.ZodType<T>,
  log: Log,
): Promise<{ items: T[]; size: number }> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { items: [], size: 0 };
    throw error;
  }
  const end = buffer.lastIndexOf(0x0a) + 1;
  if (end < buffer.length) {
    log({
      severity: 'WARNING',
      message: 'fcm recorder: dropping a torn last line',
      file: path,
      bytes: buffer.length - end,
    });
    await truncate(path, end);
  }
  const items: T[] = [];
  const lines = buffer.subarray(0, end).toString('utf8').split('\n');
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    let parsed: z.ZodSafeParseResult<T>;
    try {
      parsed = schema.safeParse(JSON.parse(line));
    } catch {
      parsed = { success: false } as z.ZodSafeParseResult<T>;
    }
    if (parsed.success) items.push(parsed.data);
    else
      log({
        severity: 'WARNING',
        message: 'fcm recorder: skipping an unreadable line',
        file: path,
        line: index + 1,
      });
  });
  return { items, size: end };
}

/** An append-only file whose last append either fully lands or is cut back off. */
class AppendFile {
  handle: FileHandle;
  size: number;
  constructor(handle: FileHandle, size: number) {
    this.handle = handle;
    this.size = size;
  }
  async append(record: unknown): Promise<void> {
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    try {
      await this.handle.appendFile(line);
      this.size += line.length;
    } catch (error) {
      await this.handle.truncate(this.size).catch(() => {});
      throw error;
    }
  }
}

export interface Store {
  readonly lastSeq: number;
  append(input: {
    project: string;
    token: string;
    message: Record<string, unknown>;
  }): Promise<RecordedMessage>;
  /** Idempotent. */
  markUnregistered(token: string): Promise<void>;
  isUnregistered(token: string): boolean;
  unregisteredCount(): number;
  count(): number;
  /** Copies, ordered by seq. */
  list(filter?: ListFilter): RecordedMessage[];
  /** Calls back on each new message for the token and when it is marked dead. Returns unsubscribe. */
  subscribe(token: string, listener: (event: StoreEvent) => void): () => void;
  close(): Promise<void>;
}

/** Index of the first message with seq > after, in a seq-ordered list. */
function firstAfter(list: RecordedMessage[], after: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid]?.seq ?? 0) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export async function openStore(dataDir: string, log: Log): Promise<Store> {
  const messagesPath = join(dataDir, MESSAGES_FILE);
  const tokensPath = join(dataDir, TOKENS_FILE);
  const loadedMessages = await loadJsonl(messagesPath, recordedMessageSchema, log);
  const loadedTokens = await loadJsonl(tokensPath, tokenEventSchema, log);

  const all: RecordedMessage[] = [];
  const byToken = new Map<string, RecordedMessage[]>();
  const dead = new Set<string>();
  const listeners = new Map<string, Set<(event: StoreEvent) => void>>();
  let lastSeq = 0;

  const remember = (message: RecordedMessage) => {
    all.push(message);
    const list = byToken.get(message.token);
    if (list) list.push(message);
    else byToken.set(message.token, [message]);
    lastSeq = Math.max(lastSeq, message.seq);
  };
  for (const message of [...loadedMessages.items].sort((a, b) => a.seq - b.seq)) remember(message);
  for (const event of loadedTokens.items) dead.add(event.token);

  const messagesFile = new AppendFile(await open(messagesPath, 'a'), loadedMessages.size);
  const tokensFile = new AppendFile(await open(tokensPath, 'a'), loadedTokens.size);

  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task);
    queue = run.catch(() => {});
    return run;
  };
  let closed = false;
  const assertOpen = () => {
    if (closed) throw new Error('the FCM recorder is closed');
  };

  const emit = (token: string, event: StoreEvent) => {
    for (const listener of [...(listeners.get(token) ?? [])]) {
      try {
        listener(event);
      } catch (error) {
        log({ severity: 'ERROR', message: 'fcm recorder: a subscriber failed', error: String(error) });
      }
    }
  };

  return {
    get lastSeq() {
      return lastSeq;
    },

    async append(input) {
      assertOpen();
      return serial(async () => {
        const seq = lastSeq + 1;
        // Shaped like FCM's ids ("0:1500415314455276%31bd1c9631bd1c96").
        const id = `0:${Date.now()}%${randomBytes(8).toString('hex')}`;
        const data = input.message['data'];
        const record: RecordedMessage = {
          seq,
          id,
          name: `projects/${input.project}/messages/${id}`,
          project: input.project,
          token: input.token,
          data: data !== null && typeof data === 'object' ? { ...(data as Record<string, string>) } : {},
          message: structuredClone(input.message),
          receivedAt: new Date().toISOString(),
        };
        await messagesFile.append(record);
        remember(record);
        emit(record.token, { type: 'message', message: structuredClone(record) });
        return structuredClone(record);
      });
    },

    async markUnregistered(token) {
      assertOpen();
      return serial(async () => {
        if (dead.has(token)) return;
        await tokensFile.append({ token, state: 'unregistered', at: new Date().toISOString() });
        dead.add(token);
        emit(token, { type: 'unregistered', token });
      });
    },

    isUnregistered: (token) => dead.has(token),
    unregisteredCount: () => dead.size,
    count: () => all.length,

    list(filter = {}) {
      const source = filter.token === undefined ? all : (byToken.get(filter.token) ?? []);
      const start = firstAfter(source, filter.after ?? 0);
      const end = filter.limit === undefined ? source.length : start + filter.limit;
      return structuredClone(source.slice(start, end));
    },

    subscribe(token, listener) {
      let set = listeners.get(token);
      if (!set) listeners.set(token, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0 && listeners.get(token) === set) listeners.delete(token);
      };
    },

    async close() {
      if (closed) return;
      // New writes are refused from here; those already queued still land before the files close.
      closed = true;
      await queue;
      listeners.clear();
      await messagesFile.handle.close();
      await tokensFile.handle.close();
    },
  };
}
