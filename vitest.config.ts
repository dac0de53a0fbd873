import { defineConfig } from 'vitest/config';

// The machine has two cores and the conformance suites start real servers (a JVM for
// Firestore among them), so files run in a small fork pool rather than one per core.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // No test may reach for Google's metadata server or real credentials.
    env: { METADATA_SERVER_DETECTION: 'none' },
    reporters: ['default', './test/summary-reporter.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
