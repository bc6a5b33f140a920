import { defineConfig } from 'vitest/config';

/** Files that start processes (coordinators, workers, nats-server, Chromium) or time the machine: they live in test/. */
const CROSS_PROCESS = ['test/**/*.test.ts'];
/**
 * Of those, files whose processes mostly wait (nats-server clusters electing leaders, kubectl rendering) and whose
 * checks time nothing that CPU contention could push past a bound: they run one at a time beside the unit files,
 * which wait on nothing, instead of adding their waits to the serial cross-process queue.
 */
const WAITING = ['test/store-contract.test.ts', 'test/lease.test.ts', 'test/k8s.test.ts', 'test/nats-config.test.ts', 'test/nats-cluster-config.test.ts'];
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
        test: { name: 'waiting', include: WAITING, fileParallelism: false, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        // Tests that start processes share two cores with them: one file at a time, after the unit files.
        test: { name: 'cross-process', include: CROSS_PROCESS, exclude: WAITING, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
