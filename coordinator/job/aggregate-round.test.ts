import { describe, expect, it } from 'vitest';
import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors } from '../../shared/codec/named.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import { adamStep, createAdamState } from '../../shared/training/adam.ts';
import { aggregateRound } from './aggregate-round.ts';
import { parseJobConfig } from '../config.ts';
import { Job } from './job.ts';
import { roundRow } from '../round-log.ts';

// One tensor per network, named as dcgan's networkOf splits them (g_ for the generator).
const shapes = { g_w: [2, 3], d_w: [4] };

function grads(generator: number, discriminator = generator): NamedArrays {
  return {
    g_w: new Float32Array([1, -1, 1, -1, 1, -1]).map((v) => v * generator),
    d_w: new Float32Array([0.5, 0.5, -0.5, -0.5]).map((v) => v * discriminator),
  };
}

describe('aggregateRound', () => {
  it('runs each network through its own rule and names the networks that flagged an update', () => {
    const training = parseJobConfig({ training: { aggregator: { generator: 'mean', discriminator: 'median' } } }).training;
    const contributions = [
      { workerId: 'a', round: 4, weight: 8, grads: grads(1) },
      { workerId: 'b', round: 4, weight: 8, grads: grads(2) },
      { workerId: 'c', round: 3, weight: 4, grads: grads(1.5, -100) },
    ];
    const { tensors, outliers } = aggregateRound(contributions, dcgan, training);
    // Generator: the weighted mean, (8 x 1 + 8 x 2 + 4 x 1.5) / 20 = 1.5 (nobody near the clip radius).
    expect(Array.from(tensors.g_w)).toEqual([1.5, -1.5, 1.5, -1.5, 1.5, -1.5]);
    // Discriminator: the median of 1, 2 and c's -100 (clipped, but still the lowest) is 1 in units of d.
    expect(Array.from(tensors.d_w)).toEqual([0.5, 0.5, -0.5, -0.5]);
    expect(outliers).toEqual([{ workerId: 'c', round: 3, networks: ['discriminator'], deviation: expect.any(Number) }]);
    expect(outliers[0].deviation).toBeGreaterThan(1);
  });
});

describe('Job.closeRound with a robust rule', () => {
  function jobWith(aggregator: string) {
    const config = parseJobConfig({ id: 'unit', training: { batchSize: 4, maxGradNorm: 100, aggregator }, dataset: { shards: 4 } });
    const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([1, 1, 1, 1]) };
    return new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
  }

  function update(job: Job, tensors: NamedArrays): Update {
    const { round, version, assignments } = job.current!;
    return {
      type: 'update',
      jobId: 'unit',
      round,
      version,
      weightsHash: [...assignments.values()][0].message.weightsHash,
      samples: 4,
      codec: 'f32',
      tensors: getCodec('f32').encode(arraysToTensors(tensors, shapes)),
      losses: { d: 1, g: 2 },
      timing: { computeMs: 10, fetchMs: 1 },
    };
  }

  /** One round of three honest workers and one sending -30x their gradient (under maxGradNorm: accepted, then clipped). */
  async function attackedRound(aggregator: string) {
    const job = jobWith(aggregator);
    const before = structuredClone(job.state.weights);
    await job.openRound(
      ['a', 'b', 'c', 'evil'].map((id) => ({ id, batchSize: 4 })),
      0,
    );
    for (const id of ['a', 'b', 'c']) job.acceptUpdate(id, update(job, grads(1)), 5);
    job.acceptUpdate('evil', update(job, grads(-30)), 6);
    return { job, before, summary: job.closeRound(10) };
  }

  it('trimmed-mean trims the attacker: the step is the honest gradient’s, and the attacker is reported', async () => {
    const { job, before, summary } = await attackedRound('trimmed-mean');
    const expected = structuredClone(before);
    adamStep(expected, grads(1), createAdamState(expected, ['g_w']), dcgan.networks.generator);
    adamStep(expected, grads(1), createAdamState(expected, ['d_w']), dcgan.networks.discriminator);
    expect(Array.from(job.state.weights.g_w)).toEqual(Array.from(expected.g_w));
    expect(Array.from(job.state.weights.d_w)).toEqual(Array.from(expected.d_w));
    expect(summary.outliers).toEqual([{ workerId: 'evil', round: 0, networks: ['generator', 'discriminator'], deviation: expect.any(Number) }]);
    const row = roundRow(summary, 10);
    expect(row.outliers).toEqual([
      { workerId: 'evil', round: 0, networks: ['generator', 'discriminator'], deviation: Number(summary.outliers[0].deviation.toPrecision(3)) },
    ]);
  });

  it('mean clips the attacker, which still pulls the step the wrong way: why the robust rules exist', async () => {
    const { job, before, summary } = await attackedRound('mean');
    // Clipped to 4x the median norm and a quarter of the weight: 0.75 x 1 - 0.25 x 4 = -0.25 of the honest gradient.
    const moved = job.state.weights.g_w[0] - before.g_w[0];
    expect(moved).toBeGreaterThan(0);
    expect(summary.outliers.map((outlier) => outlier.workerId)).toEqual(['evil']);
  });

  it('an unapplied round reports no outliers', async () => {
    const job = jobWith('median');
    await job.openRound([{ id: 'a', batchSize: 4 }], 0);
    expect(job.closeRound(1).outliers).toEqual([]);
  });
});
