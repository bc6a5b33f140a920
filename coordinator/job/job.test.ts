import { describe, expect, it } from 'vitest';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { adamStep, createAdamState } from '../../shared/training/adam.ts';
import { parseJobConfig } from '../config.ts';
import { grads, makeJob, rejection, shapes, update, workers } from './job-fixtures.ts';
import { Job } from './job.ts';

describe('Job rounds', () => {
  it('assigns each worker its own shards and a batch from them, with the current weights', async () => {
    const job = makeJob();
    const round = await job.openRound(workers, 0);
    const [a, b] = [round.assignments.get('a')!.message, round.assignments.get('b')!.message];
    expect(a.shardIds).toEqual([0, 2]);
    expect(b.shardIds).toEqual([1, 3]);
    expect(a.sampleIndices).toHaveLength(4);
    expect(new Set([...a.sampleIndices, ...b.sampleIndices]).size).toBe(8);
    expect(a.weightsHash).toBe((await job.publishedWeights()).hash);
    expect(job.weightsByHash(a.weightsHash)?.version).toBe(0);
  });

  it('applies the sample-weighted mean of the accepted updates with each network’s Adam, and advances the version by one', async () => {
    const job = makeJob();
    const before = structuredClone(job.state.weights);
    await job.openRound(workers, 0);
    job.acceptUpdate('a', update(job, {}, grads(1)), 5);
    expect(job.roundComplete()).toBe(false);
    job.acceptUpdate('b', update(job, {}, grads(3)), 7);
    expect(job.roundComplete()).toBe(true);
    const summary = job.closeRound(10);
    expect(summary.applied).toBe(true);
    expect(summary.samples).toBe(8);
    expect(job.state.version).toBe(1);
    expect(job.state.round).toBe(1);

    const expected = structuredClone(before);
    const mean = grads(2);
    adamStep(expected, mean, createAdamState(expected, ['g_w']), dcgan.networks.generator);
    adamStep(expected, mean, createAdamState(expected, ['d_w']), dcgan.networks.discriminator);
    expect(Array.from(job.state.weights.g_w)).toEqual(Array.from(expected.g_w));
    expect(Array.from(job.state.weights.d_w)).toEqual(Array.from(expected.d_w));
  });

  it('closes a round at its deadline with what has arrived; a round with nothing applies nothing', async () => {
    const job = makeJob();
    await job.openRound(workers, 0);
    job.markFailed('a', 'LEFT', 'connection closed');
    const empty = job.closeRound(1000);
    expect(empty.applied).toBe(false);
    expect(empty.failures.map((f) => f.code).sort()).toEqual(['DEADLINE', 'LEFT']);
    expect(job.state.version).toBe(0);
    // The round number moves on all the same: an update names exactly one round.
    expect(job.state.round).toBe(1);

    await job.openRound(workers, 1000);
    job.acceptUpdate('b', update(job), 1500);
    const partial = job.closeRound(2000);
    expect(partial.applied).toBe(true);
    expect(partial.failures).toEqual([expect.objectContaining({ workerId: 'a', code: 'DEADLINE' })]);
    expect(job.state.round).toBe(2);
    expect(job.state.version).toBe(1);
    // A late update for a closed round is refused, never applied twice.
    await job.openRound(workers, 2000);
    expect(rejection(() => job.acceptUpdate('a', update(job, { round: 1, version: 0 }), 2100)).code).toBe(ErrorCode.WrongRound);
  });
});

describe('verification copies', () => {
  it("gives a copy the original's assignment, same indices and seed, and counts only what is not excluded", async () => {
    const job = makeJob();
    const round = await job.openRound([...workers, { id: 'c', batchSize: 4 }], 0, 1000, new Map([['c', 'a']]));
    const [a, c] = [round.assignments.get('a')!.message, round.assignments.get('c')!.message];
    expect(c).toEqual(a);
    expect(c).not.toBe(a);
    // One seed per round: each example's noise comes from it and the example's index, whichever worker draws it.
    expect(round.assignments.get('b')!.message.seed).toBe(a.seed);
    expect(round.assignments.get('b')!.message.sampleIndices).not.toEqual(a.sampleIndices);
    for (const id of ['a', 'b', 'c']) job.acceptUpdate(id, update(job, {}, grads(id === 'b' ? 3 : 1)), 1);
    const summary = job.closeRound(2, new Map([['c', 'duplicate']]));
    expect(summary.updates.map((u) => u.workerId)).toEqual(['a', 'b']);
    expect(summary.excluded).toEqual([{ workerId: 'c', reason: 'duplicate' }]);
    expect(summary.samples).toBe(8);
  });
});

describe('Job learning-rate scaling', () => {
  it("steps Adam at the rate training.lrScaling gives for the round's global batch", async () => {
    // referenceBatch 2 and a round of 8 samples: sqrt scales the rate by 2.
    const config = parseJobConfig({ id: 'unit', training: { batchSize: 4, maxGradNorm: 100, lrScaling: 'sqrt', referenceBatch: 2 }, dataset: { shards: 4 } });
    const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([1, 1, 1, 1]) };
    const job = new Job(config, shapes, Job.initialState(dcgan, structuredClone(weights), config.dataset.shards), 100);
    await job.openRound(workers, 0);
    job.acceptUpdate('a', update(job, {}, grads(1)), 5);
    job.acceptUpdate('b', update(job, {}, grads(3)), 7);
    job.closeRound(10);

    const expected = structuredClone(weights);
    const doubled = (network: 'generator' | 'discriminator') => ({ ...dcgan.networks[network], learningRate: dcgan.networks[network].learningRate * 2 });
    adamStep(expected, grads(2), createAdamState(expected, ['g_w']), doubled('generator'));
    adamStep(expected, grads(2), createAdamState(expected, ['d_w']), doubled('discriminator'));
    expect(Array.from(job.state.weights.g_w)).toEqual(Array.from(expected.g_w));
    expect(Array.from(job.state.weights.d_w)).toEqual(Array.from(expected.d_w));
  });
});

describe('folding updates as they arrive', () => {
  it('buffers the first round, then folds each on-time update on arrival (no tensors kept) to the mean the buffered rule gives', async () => {
    const folding = makeJob();
    // The same job with late updates weighted by staleness: such rounds are never folded (foldRefusal).
    const config = parseJobConfig({ id: 'unit', training: { batchSize: 4, maxGradNorm: 100, lateUpdates: 'stale' }, dataset: { shards: 4 } });
    const buffered = new Job(config, shapes, Job.initialState(dcgan, structuredClone(folding.state.weights), config.dataset.shards), 100);
    for (const job of [folding, buffered]) {
      for (const round of [0, 1, 2]) {
        const open = await job.openRound(workers, round * 10);
        // No τ before a round applied: the first round is aggregated whole.
        expect(open.fold !== undefined).toBe(job === folding && round > 0);
        const accepted = await job.acceptUpdate('a', update(job, {}, grads(1 + round)), round * 10 + 1);
        expect(Object.keys(accepted.grads).length === 0).toBe(job === folding && round > 0);
        job.acceptUpdate('b', update(job, {}, grads(3 + round)), round * 10 + 2);
        expect(job.closeRound(round * 10 + 5).outliers).toEqual([]);
      }
      expect(job.tau.generator).toBeGreaterThan(0);
    }
    for (const name of Object.keys(shapes)) {
      const [got, want] = [folding.state.weights[name], buffered.state.weights[name]];
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i], 6);
    }
  });

  it("keeps a verification pair's tensors for the comparison at close, and folds them then", async () => {
    const job = makeJob();
    await job.openRound(workers, 0);
    job.acceptUpdate('a', update(job), 1);
    job.acceptUpdate('b', update(job), 2);
    job.closeRound(3);
    const round = await job.openRound([...workers, { id: 'c', batchSize: 4 }], 10, 1000, new Map([['c', 'a']]));
    const kept = await Promise.all(['a', 'b', 'c'].map((id) => job.acceptUpdate(id, update(job, {}, grads(2)), 11)));
    expect(kept.map((accepted) => Object.keys(accepted.grads).length > 0)).toEqual([true, false, true]);
    expect([...round.fold!.folded]).toEqual(['b']);
    const summary = job.closeRound(12, new Map([['c', 'duplicate']]));
    expect(summary.applied).toBe(true);
    expect([...round.fold!.folded].sort()).toEqual(['a', 'b']);
  });
});
