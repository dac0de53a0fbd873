// The local stack a test file runs against: started fresh (with a Firestore client on it) before
// the file's own setup, and closed and removed after its own teardown, so that each file is
// isolated and cleans up after itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll } from 'vitest';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';

export interface LocalStack {
  readonly stack: Stack;
  readonly firestore: Firestore;
  readonly dataDir: string;
}

/** Registers the file's stack; its fields are set once the first beforeAll has run. */
export function useLocalStack(name: string): LocalStack {
  const local = {} as { stack: Stack; firestore: Firestore; dataDir: string };
  beforeAll(async () => {
    local.dataDir = await mkdtemp(join(tmpdir(), `cb-${name}-`));
    local.stack = await startStack({ dataDir: local.dataDir, portBase: 0 });
    local.firestore = createFirestore(local.stack.env.GCLOUD_PROJECT!, local.stack.env);
  });
  // Registered first, so it runs after the file's own afterAll hooks.
  afterAll(async () => {
    await local.firestore?.terminate();
    await local.stack?.close();
    if (local.dataDir) await rm(local.dataDir, { recursive: true, force: true });
  });
  return local;
}
