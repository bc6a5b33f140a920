import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'shared/**/*.test.ts',
      'runtime/**/*.test.ts',
      'coordinator/**/*.test.ts',
      'worker/**/*.test.ts',
      'browser-worker/**/*.test.ts',
      'dashboard/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    // Tests that start processes share two cores: run files one at a time.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
