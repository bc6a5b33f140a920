import { describe, expect, it } from 'vitest';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { parseJobConfig } from '../config.ts';
import { Job } from '../job/job.ts';
import type { QualityRow } from '../../shared/api/round-log.ts';
import { shapes } from '../test-fixtures.ts';
import { QualityMonitor } from './monitor.ts';
import type { QualityReport } from '../../shared/eval/report.ts';
import type { Scorer, ScoreJob } from './scoring-thread.ts';

/** A scorer whose answers the test releases by hand, recording what it was asked (a fake: the real thread is in test/quality.test.ts). */
class ManualScorer implements Scorer {
  readonly asked: ScoreJob[] = [];
  /** The weights as they were when asked (the job steps its own on). */
  readonly weightsAsked: NamedArrays[] = [];
  private waiting: { resolve(report: QualityReport): void; reject(error: Error): void }[] = [];
  closed = false;

  score(job: ScoreJob): Promise<QualityReport> {
    this.asked.push(job);
    this.weightsAsked.push(Object.fromEntries(Object.entries(job.weights).map(([name, array]) => [name, array.slice()])));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  answer(frechet: number): void {
    this.waiting.shift()!.resolve({
      dataset: 'mnist',
      count: this.asked.at(-1)!.count,
      frechet,
      frechetFloor: 10,
      precision: 0.5,
      recall: 0.4,
      recognisable: 0.6,
      coverageEntropy: 0.9,
      ms: 5,
    });
  }

  fail(message: string): void {
    this.waiting.shift()!.reject(new Error(message));
  }
}

function setup(output: Record<string, unknown>) {
  const config = parseJobConfig({ id: 'unit', dataset: { shards: 2 }, training: { seed: 7 }, output: { dir: '/unused', ...output } });
  const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([-1, -2, -3, -4]) };
  const job = new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
  const scorer = new ManualScorer();
  const monitor = new QualityMonitor(job, () => scorer);
  const rows: QualityRow[] = [];
  const skipped: number[] = [];
  const failed: string[] = [];
  monitor.on('quality', (row) => rows.push(row));
  monitor.on('skipped', (round) => skipped.push(round));
  monitor.on('failed', (_round, error) => failed.push(error.message));
  /** Closes round `round` at `now` as the runner would: the job's version and samples moved first. */
  const close = (round: number, now: number, applied = true) => {
    if (applied) {
      job.state.version += 1;
      job.state.samplesSeen += 64;
      job.state.weights.g_w[0] += 1;
    }
    job.state.round = round + 1;
    monitor.roundClosed({ round, applied, durationMs: 500 }, now);
  };
  return { job, scorer, monitor, rows, skipped, failed, close };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('QualityMonitor', () => {
  it('scores every evalEvery training steps, with the job’s held-out split, a fixed seed and a snapshot of the weights', async () => {
    const { scorer, rows, close } = setup({ evalEvery: 2, evalSamples: 64 });
    close(0, 1_000);
    expect(scorer.asked).toHaveLength(0);
    close(1, 2_000);
    expect(scorer.asked).toHaveLength(1);
    expect(scorer.asked[0]).toMatchObject({ model: { id: 'dcgan' }, dataset: { id: 'mnist', heldOutFraction: 0.1, splitSeed: 7 }, count: 64 });
    expect(scorer.weightsAsked[0].g_w[0]).toBe(3);
    scorer.answer(50);
    await settled();
    // A round that applied nothing takes no training step: version 2 is not scored twice.
    close(2, 3_000, false);
    close(3, 4_000);
    close(4, 5_000);
    expect(scorer.asked).toHaveLength(2);
    expect(scorer.asked[1].seed).toBe(scorer.asked[0].seed);
    scorer.answer(40);
    await settled();
    expect(rows).toEqual([
      {
        kind: 'quality',
        round: 1,
        version: 2,
        samplesSeen: 128,
        wallMs: 1_500,
        closedAt: new Date(2_000).toISOString(),
        dataset: 'mnist',
        count: 64,
        frechet: 50,
        frechetFloor: 10,
        precision: 0.5,
        recall: 0.4,
        recognisable: 0.6,
        coverageEntropy: 0.9,
        ms: 5,
      },
      expect.objectContaining({ round: 4, version: 4, samplesSeen: 256, wallMs: 4_500, frechet: 40 }),
    ]);
  });

  it('scores the EMA weights where the job keeps them', () => {
    const { job, scorer, close } = setup({ evalEvery: 1 });
    job.state.ema = { g_w: new Float32Array(6).fill(9), d_w: new Float32Array(4).fill(9) };
    close(0, 1_000);
    expect(scorer.weightsAsked[0].g_w[0]).toBe(9);
  });

  it('skips a scoring that falls due while one runs, and counts it: nothing waits and nothing queues', async () => {
    const { scorer, monitor, rows, skipped, close } = setup({ evalEvery: 1 });
    close(0, 1_000);
    expect(monitor.busy).toBe(true);
    close(1, 2_000);
    close(2, 3_000);
    expect(scorer.asked).toHaveLength(1);
    expect(skipped).toEqual([1, 2]);
    scorer.answer(30);
    await settled();
    expect(monitor.busy).toBe(false);
    close(3, 4_000);
    expect(scorer.asked).toHaveLength(2);
    expect(monitor.counts).toEqual({ scored: 1, skipped: 2, failed: 0 });
    expect(rows.map((row) => row.round)).toEqual([0]);
  });

  it('counts a failed scoring and scores again when the next one is due', async () => {
    const { scorer, monitor, failed, close } = setup({ evalEvery: 1 });
    close(0, 1_000);
    scorer.fail('no classifier');
    await settled();
    expect(failed).toEqual(['no classifier']);
    close(1, 2_000);
    expect(scorer.asked).toHaveLength(2);
    expect(monitor.counts.failed).toBe(1);
  });

  it('does nothing with evalEvery 0', async () => {
    const { scorer, monitor, close } = setup({ evalEvery: 0 });
    for (let round = 0; round < 5; round++) close(round, round * 1000);
    await monitor.settle(4, 5_000);
    expect(scorer.asked).toHaveLength(0);
  });

  it('at the end, waits for the scoring in flight and scores the final weights once', async () => {
    const { scorer, monitor, rows, close } = setup({ evalEvery: 2 });
    close(0, 1_000);
    close(1, 2_000);
    close(2, 3_000);
    const settling = monitor.settle(2, 3_100);
    scorer.answer(50);
    await settled();
    expect(scorer.asked).toHaveLength(2);
    scorer.answer(45);
    await settling;
    expect(rows.map((row) => [row.round, row.version])).toEqual([
      [1, 2],
      [2, 3],
    ]);
    await monitor.settle(2, 3_200);
    expect(scorer.asked).toHaveLength(2);
  });

  it('does not score at the end a job shorter than evalEvery steps', async () => {
    const { scorer, monitor, close } = setup({ evalEvery: 5 });
    for (let round = 0; round < 4; round++) close(round, round * 1000);
    await monitor.settle(3, 4_000);
    expect(scorer.asked).toHaveLength(0);
  });

  it('drops a scoring in flight when closed', async () => {
    const { scorer, monitor, rows, failed, close } = setup({ evalEvery: 1 });
    close(0, 1_000);
    await monitor.close();
    expect(scorer.closed).toBe(true);
    scorer.fail('the scoring thread was closed');
    await settled();
    expect(rows).toEqual([]);
    expect(failed).toEqual([]);
    close(1, 2_000);
    expect(scorer.asked).toHaveLength(1);
  });

  it('after a restart, counts wall time from the first round and knows the figures and the version already scored', async () => {
    const { scorer, monitor, close } = setup({ evalEvery: 1 });
    const earlier = {
      kind: 'quality',
      round: 0,
      version: 1,
      samplesSeen: 64,
      wallMs: 900,
      closedAt: new Date(1_000).toISOString(),
      dataset: 'mnist',
      count: 64,
      frechet: 60,
      frechetFloor: 10,
      precision: 0.5,
      recall: 0.4,
      recognisable: 0.6,
      coverageEntropy: 0.9,
      ms: 5,
    } as const;
    monitor.restore([earlier], 100);
    expect(monitor.latest).toEqual(earlier);
    close(5, 60_000);
    expect(scorer.asked).toHaveLength(1);
    scorer.answer(20);
    await settled();
    expect(monitor.latest).toMatchObject({ round: 5, wallMs: 59_900, frechet: 20 });
    expect(monitor.history).toHaveLength(2);
  });
});
