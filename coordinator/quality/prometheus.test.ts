import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { parseJobConfig } from '../config.ts';
import { Hub } from '../hub.ts';
import { Job } from '../job/job.ts';
import { createMetrics } from '../metrics.ts';
import { JobRunner } from '../job/runner.ts';
import { fakeTrainer, shapes } from '../test-fixtures.ts';
import type { QualityReport } from '../../shared/eval/report.ts';
import type { Scorer } from './scoring-thread.ts';

/** A scorer that answers at once with a fixed report, except for the rounds it is told to fail (a fake: the real thread is in test/quality.test.ts). */
function instantScorer(report: QualityReport): Scorer & { failNext: boolean } {
  return {
    failNext: false,
    async score() {
      if (this.failNext) throw new Error('no classifier');
      return report;
    },
    async close() {},
  };
}

const REPORT: QualityReport = {
  dataset: 'mnist',
  count: 64,
  frechet: 80.5,
  frechetFloor: 40.25,
  precision: 0.7,
  recall: 0.6,
  recognisable: 0.55,
  coverageEntropy: 0.97,
  ms: 1500,
};

describe('quality metrics', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

  it('show the last scoring of each job as gauges labelled by job only, and count scorings by outcome', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-quality-metrics-'));
    dirs.push(dir);
    const config = parseJobConfig({
      id: 'unit',
      dataset: { shards: 2 },
      output: { dir, evalEvery: 1, checkpointEvery: 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000 },
    });
    const weights: NamedArrays = { g_w: new Float32Array(6), d_w: new Float32Array(4) };
    const job = new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
    const scorer = instantScorer(REPORT);
    const runner = new JobRunner(job, fakeTrainer(), Date.now, {}, () => scorer);
    const hub = new Hub({ defaultJobId: 'unit', heartbeatMs: 5000 });
    hub.addRunner(runner);
    const metrics = createMetrics(hub);

    const before = await metrics.render();
    expect(before).toMatch(/^tessera_quality_evaluations_total\{job_id="unit",outcome="skipped"\} 0$/m);
    expect(before).not.toMatch(/^tessera_quality_frechet\{/m);

    const step = () => {
      job.state.version += 1;
      job.state.round += 1;
      runner.quality.roundClosed({ round: job.state.round - 1, applied: true, durationMs: 100 }, Date.now());
    };
    step();
    step(); // due while the first still runs: skipped
    await new Promise((resolve) => setImmediate(resolve));
    scorer.failNext = true;
    step();
    await new Promise((resolve) => setImmediate(resolve));

    const text = await metrics.render();
    const line = (name: string) => text.match(new RegExp(`^${name}\\{job_id="unit"\\} (\\S+)$`, 'm'))?.[1];
    expect(line('tessera_quality_frechet')).toBe('80.5');
    expect(line('tessera_quality_frechet_floor')).toBe('40.25');
    expect(line('tessera_quality_precision')).toBe('0.7');
    expect(line('tessera_quality_recall')).toBe('0.6');
    expect(line('tessera_quality_recognisable')).toBe('0.55');
    expect(line('tessera_quality_coverage_entropy')).toBe('0.97');
    expect(line('tessera_quality_scoring_seconds')).toBe('1.5');
    expect(line('tessera_quality_samples')).toBe('64');
    expect(line('tessera_quality_version')).toBe('1');
    // An unconditional model has no label agreement: no series rather than a made-up 0.
    expect(line('tessera_quality_label_agreement')).toBeUndefined();
    for (const [outcome, count] of [
      ['scored', 1],
      ['skipped', 1],
      ['failed', 1],
    ] as const) {
      expect(text).toMatch(new RegExp(`^tessera_quality_evaluations_total\\{job_id="unit",outcome="${outcome}"\\} ${count}$`, 'm'));
    }
    await runner.shutdown();
    runner.dispose();
  });
});
