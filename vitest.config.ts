import { configDefaults, defineConfig } from 'vitest/config';

/** Files that start processes (coordinators, workers, nats-server, Chromium) or time the machine: they live in test/. */
const CROSS_PROCESS = ['test/**/*.test.ts'];
/**
 * Files of test/ that start servers but spend their time waiting on them (NATS clusters electing leaders, leases
 * expiring, kubectl renders), with no worker computing and no timing finer than a second: they run beside the unit
 * files, two files at a time, instead of in the serial queue (~90 s of that queue's ~15 minutes).
 */
// Not test/lease.test.ts: its kill -9 of a stream leader must be outlasted by an election within the lease's TTL, which
// failed once (2026-12-04) with the unit files' CPU beside it; it runs alone in the serial queue.
const WAITING = [
  'test/store-contract.test.ts',
  'test/nats-cluster-config.test.ts',
  'test/nats-config.test.ts',
  'test/k8s.test.ts',
  'test/impersonation.test.ts',
  'test/impersonation-nats.test.ts',
  'test/amplification-nats.test.ts',
  'test/fuzz.test.ts',
  'test/layout.test.ts',
  'test/api.test.ts',
];
const UNIT = [
  'shared/**/*.test.ts',
  'runtime/**/*.test.ts',
  'coordinator/**/*.test.ts',
  'worker/**/*.test.ts',
  'aggregator/**/*.test.ts',
  'browser-worker/**/*.test.ts',
  'dashboard/**/*.test.ts',
];

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        // In-process tests: two files at a time (each fork spends ~1.5 s importing tfjs before its first test).
        test: { name: 'unit', include: UNIT, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        // Same group as the unit files, so vitest runs them in one pool of two: a waiting file takes a slot, not the CPU.
        test: { name: 'waiting', include: WAITING, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        // Tests that start processes share two cores with them: one file at a time, after the unit files.
        test: {
          name: 'cross-process',
          include: CROSS_PROCESS,
          exclude: [...configDefaults.exclude, ...WAITING],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
