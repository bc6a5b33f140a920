import { defineConfig } from 'vitest/config';

/** Files that start processes (coordinators, workers, nats-server, Chromium) or time the machine: they live in test/. */
const CROSS_PROCESS = ['test/**/*.test.ts'];
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
        // Tests that start processes share two cores with them: one file at a time, after the unit files.
        test: { name: 'cross-process', include: CROSS_PROCESS, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
