import { configDefaults, defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Files that start processes (coordinators, workers, nats-server, Chromium) or time the machine: they live in test/. */
const CROSS_PROCESS = ['test/**/*.test.ts'];
/**
 * Files of test/ that start servers but spend their time waiting on them (NATS clusters electing leaders, leases
 * expiring, kubectl renders), with no worker computing and no timing finer than a second: they run beside the unit
 * files instead of in the serial queue (~90 s of that queue's ~15 minutes), one of them beside two unit files
 * (InterleavedSequencer).
 */
const WAITING = [
  'test/store-contract.test.ts',
  // Its kill -9 of a stream leader once outlasted the lease's deadline; that was nats-server's election timeout (4 to 9 s),
  // not the unit files' CPU: a holder now waits suspended for its renewal to land (coordinator/store/lease.ts).
  'test/lease.test.ts',
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

/**
 * Vitest's order (by project name, then the longest file first) ran every waiting file after the last unit file: ~45 s
 * of the two slots mostly idle. This one puts the waiting files early among the unit files, so with three slots one
 * waits on its servers while two unit files use the cores.
 */
class InterleavedSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const waiting = sorted.filter((file) => file.project.name === 'waiting');
    const unit = sorted.filter((file) => file.project.name === 'unit');
    const rest = sorted.filter((file) => file.project.name !== 'waiting' && file.project.name !== 'unit');
    // One in three from the start: a waiting file lasts as long as several unit files, so about one slot of the three
    // is waiting until they are all done, well before the unit files are.
    const spread = unit.flatMap((file, index) => (index % 2 === 0 && waiting.length > 0 ? [waiting.shift()!, file] : [file]));
    return [...spread, ...waiting, ...rest];
  }
}

export default defineConfig({
  test: {
    pool: 'forks',
    sequence: { sequencer: InterleavedSequencer },
    testTimeout: 120_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        // In-process tests: two files at a time beside a waiting file. Not isolated: a fork runs file after file with
        // the modules it imported (tfjs takes ~1.5 s to import, which every file paid again: ~40 s of the suite). Each
        // file sets up the backend and state it needs; the files pass in vitest's order, without a cache, and shuffled.
        test: { name: 'unit', include: UNIT, maxWorkers: 3, isolate: false, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        // Same group as the unit files, so vitest runs them in one pool of three: a waiting file takes a slot, not the CPU.
        test: { name: 'waiting', include: WAITING, maxWorkers: 3, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        // Tests that start processes share two cores with them: one file at a time, after the unit files. Isolated: in
        // one fork (2026-12-04) test/attack.test.ts's fake-speed run read a held-out loss 1.79x the clean one's after
        // the files before it, 0.99x alone (it trains in-process, and what earlier files set up in tfjs stayed).
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
