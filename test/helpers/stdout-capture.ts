// Functions on an in-process stack log to this process's stdout: keep a copy of every line so a
// test can scan the logs (for a canary, a token, a secret) while they still reach the terminal.
export interface StdoutCapture {
  readonly lines: string[];
  restore(): void;
}

export function captureStdout(): StdoutCapture {
  const lines: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return original(chunk, ...rest);
  }) as typeof process.stdout.write;
  return {
    lines,
    restore: () => {
      process.stdout.write = original;
    },
  };
}
