import { describe, expect, it } from 'vitest';
import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors } from '../../shared/codec/named.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import { adamStep, createAdamState } from '../../shared/training/adam.ts';
import { parseJobConfig } from '../config.ts';
import { Job } from './job.ts';

// Two tiny tensors, one per network, stand in for the model: the Job only needs names and shapes.
const shapes = { g_w: [2, 3], d_w: [4] };

function makeJob() {
  const config = parseJobConfig({ id: 'unit', training: { batchSize: 4, maxGradNorm: 100 }, dataset: { shards: 4 } });
  const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([1, 1, 1, 1]) };
  return new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
}

function grads(scale = 1): NamedArrays {
  return { g_w: new Float32Array([1, -1, 1, -1, 1, -1]).map((v) => v * scale), d_w: new Float32Array([0.5, 0.5, -0.5, -0.5]).map((v) => v * scale) };
}

function update(job: Job, overrides: Partial<Update> = {}, tensors: NamedArrays = grads()): Update {
  return {
    type: 'update',
    jobId: 'unit',
    round: job.current!.round,
    version: job.current!.version,
    weightsHash: [...job.current!.assignments.values()][0].message.weightsHash,
    samples: 4,
    codec: 'f32',
    tensors: getCodec('f32').encode(arraysToTensors(tensors, shapes)),
    losses: { d: 1, g: 2 },
    timing: { computeMs: 10, fetchMs: 1 },
    ...overrides,
  };
}

function rejection(action: () => unknown): { code: ErrorCode; field: string | undefined } {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(TesseraError);
    return { code: (error as TesseraError).code, field: (error as TesseraError).field };
  }
  throw new Error('expected a rejection');
}

const workers = [
  { id: 'a', batchSize: 4 },
  { id: 'b', batchSize: 4 },
];

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

  it('rejects bad updates with a code and the field at fault, and the round still completes from the good ones', async () => {
    const job = makeJob();
    await job.openRound([...workers, { id: 'c', batchSize: 4 }], 0);
    const bad = (overrides: Partial<Update>, tensors?: NamedArrays) => rejection(() => job.acceptUpdate('zz', update(job, overrides, tensors), 1));
    // Checked with an unassigned worker first, then each field on an assigned one whose update is still to come.
    expect(bad({})).toEqual({ code: ErrorCode.NotAssigned, field: 'round' });

    const asB = (overrides: Partial<Update>, tensors?: NamedArrays) => {
      const fresh = makeJobLike(job);
      return rejection(() => fresh.acceptUpdate('b', update(fresh, overrides, tensors), 1));
    };
    expect(asB({ round: 7 })).toEqual({ code: ErrorCode.WrongRound, field: 'round' });
    expect(asB({ jobId: 'other' })).toEqual({ code: ErrorCode.UnknownJob, field: 'jobId' });
    expect(asB({ version: 3 })).toEqual({ code: ErrorCode.StaleVersion, field: 'version' });
    // The right version number but other weights: a gradient replayed from elsewhere is refused by its hash.
    expect(asB({ weightsHash: 'f'.repeat(64) })).toEqual({ code: ErrorCode.StaleVersion, field: 'weightsHash' });
    expect(asB({ samples: 5 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'samples' });
    expect(asB({ codec: 'zip' })).toEqual({ code: ErrorCode.UnknownCodec, field: 'codec' });
    expect(asB({ tensors: new Uint8Array([1, 2, 3]) }).code).toBe(ErrorCode.DecodeFailed);
    const onlyG = getCodec('f32').encode({ g_w: { dtype: 'float32', shape: [2, 3], data: grads().g_w } });
    expect(asB({ tensors: onlyG })).toEqual({ code: ErrorCode.TensorMismatch, field: 'tensors.d_w' });
    const nan = grads();
    nan.d_w[2] = Number.NaN;
    expect(asB({}, nan)).toEqual({ code: ErrorCode.NonFinite, field: 'tensors.d_w' });
    expect(asB({}, grads(1000))).toEqual({ code: ErrorCode.NormTooLarge, field: 'tensors' });
    const wrongShape = getCodec('f32').encode({
      g_w: { dtype: 'float32', shape: [3, 2], data: grads().g_w },
      d_w: { dtype: 'float32', shape: [4], data: grads().d_w },
    });
    expect(asB({ tensors: wrongShape })).toEqual({ code: ErrorCode.TensorMismatch, field: 'tensors.g_w.shape' });

    // In the real round: a accepted, b sends garbage, c a duplicate after its good one.
    job.acceptUpdate('a', update(job), 2);
    expect(rejection(() => job.acceptUpdate('b', update(job, { tensors: new Uint8Array(10) }), 3)).code).toBe(ErrorCode.DecodeFailed);
    job.acceptUpdate('c', update(job), 4);
    expect(rejection(() => job.acceptUpdate('c', update(job), 5))).toEqual({ code: ErrorCode.DuplicateUpdate, field: 'round' });
    // b's rejected update counts as its failure: the round does not wait for it.
    expect(job.roundComplete()).toBe(true);
    const summary = job.closeRound(6);
    expect(summary.updates.map((u) => u.workerId).sort()).toEqual(['a', 'c']);
    expect(summary.failures).toEqual([expect.objectContaining({ workerId: 'b', code: ErrorCode.DecodeFailed })]);
    expect(job.state.version).toBe(1);
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

  it('never places a copy late: its samples would count twice', async () => {
    const config = parseJobConfig({ id: 'unit', training: { batchSize: 4, lateUpdates: 'stale' }, dataset: { shards: 4 } });
    const job = new Job(config, shapes, Job.initialState(dcgan, { g_w: new Float32Array(6), d_w: new Float32Array(4) }, 4), 100);
    await job.openRound(workers, 0, 1000, new Map([['b', 'a']]));
    const lateCopy = update(job);
    job.acceptUpdate('a', update(job), 1);
    job.closeRound(2);
    await job.openRound(workers, 3);
    expect(rejection(() => job.acceptUpdate('b', lateCopy, 4))).toEqual({ code: ErrorCode.WrongRound, field: 'round' });
  });
});

/** A job in the same open round as `job`, so each bad-update case starts from clean state. */
function makeJobLike(job: Job): Job {
  const copy = makeJob();
  copy.current = {
    ...job.current!,
    assignments: new Map(job.current!.assignments),
    updates: new Map(),
    failures: new Map(),
  };
  return copy;
}

describe('late updates', () => {
  function staleJob() {
    const config = parseJobConfig({
      id: 'unit',
      training: { batchSize: 4, lateUpdates: 'stale', stalenessDecay: 0.5, maxStaleness: 1 },
      dataset: { shards: 4 },
    });
    const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([1, 1, 1, 1]) };
    return new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
  }

  it('applies an update that missed its round in the next one, discounted per version behind, and only once', async () => {
    const job = staleJob();
    await job.openRound(workers, 0);
    const lateOne = update(job);
    job.acceptUpdate('a', update(job), 1);
    job.closeRound(2);
    await job.openRound(workers, 2);
    const taken = job.acceptUpdate('b', lateOne, 3);
    expect(taken).toMatchObject({ round: 0, samples: 4, weight: 2 });
    expect(rejection(() => job.acceptUpdate('b', lateOne, 4))).toEqual({ code: ErrorCode.WrongRound, field: 'round' });
    job.acceptUpdate('a', update(job), 5);
    const summary = job.closeRound(6);
    expect(summary.late.map((u) => u.workerId)).toEqual(['b']);
    // b's own round-1 share is still missing: it is a failure of round 1, not filled by the late update.
    expect(summary.failures.map((f) => f.workerId)).toEqual(['b']);
  });

  it('drops one older than maxStaleness', async () => {
    const job = staleJob();
    await job.openRound(workers, 0);
    const lateOne = update(job);
    job.acceptUpdate('a', update(job), 1);
    job.closeRound(2);
    for (let round = 1; round <= 2; round++) {
      await job.openRound(workers, 10 * round);
      job.acceptUpdate('a', update(job), 10 * round + 1);
      if (round < 2) job.closeRound(10 * round + 2);
    }
    expect(rejection(() => job.acceptUpdate('b', lateOne, 30))).toEqual({ code: ErrorCode.StaleVersion, field: 'version' });
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
