import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concatBatches, concatNoise, relativeError } from '../trainer-contract.ts';
import { weightedMean } from '../../aggregate/weighted-mean.ts';
import type { NamedArrays } from '../../codec/types.ts';
import { loadMnist } from '../../data/mnist.ts';
import { adamStep, createAdamState } from '../../training/adam.ts';
import { registerWasmConvKernels } from '../../tfjs/wasm-conv-kernels.ts';
import { dcgan, DcganTrainer } from './dcgan.ts';

describe('dcgan: data-parallel gradients equal single-process gradients', () => {
  // A narrow model keeps the test quick; the architecture is the default one.
  const config = dcgan.parseConfig({ width: 8, latentDim: 16 });
  let trainer: DcganTrainer;

  beforeAll(async () => {
    registerWasmConvKernels();
    await tf.setBackend('wasm');
    trainer = new DcganTrainer(config);
    trainer.setWeights(await warmedUpWeights(trainer));
  });

  /**
   * Weights after a few training steps. At initialization D scores real and
   * fake alike, so its output bias gradient is the difference of two equal
   * halves (~0.5 - 0.5) and float32 rounding alone is 1e-4 of the result;
   * a D that has begun to tell them apart is the state training runs in.
   */
  async function warmedUpWeights(model: DcganTrainer): Promise<NamedArrays> {
    const weights = model.initialWeights(42);
    const names = Object.keys(model.shapes);
    const optimizers = Object.keys(dcgan.networks).map((network) => ({
      network,
      state: createAdamState(weights, names.filter((name) => dcgan.networkOf(name) === network)),
    }));
    const dataset = loadMnist();
    for (let step = 0; step < 10; step++) {
      model.setWeights(weights);
      const batch = dataset.batch(Array.from({ length: 16 }, (_, i) => (step * 613 + i * 389) % dataset.count));
      const { grads } = await model.lossAndGrads(batch, model.drawNoise(16, step));
      for (const { network, state } of optimizers) adamStep(weights, grads, state, { ...dcgan.networks[network], learningRate: 2e-3 });
    }
    return weights;
  }
  afterAll(() => trainer.dispose());

  it('the sample-weighted mean of 3 workers on disjoint shards equals the union batch, and so does the Adam step', async () => {
    const dataset = loadMnist();
    // Unequal shards (3, 5, 8 examples) so the weighting by samples matters.
    const shards = [
      [0, 1500, 3000],
      [4000, 5000, 6000, 7000, 8000],
      [10, 1010, 2010, 3010, 4010, 5010, 6010, 9010],
    ];
    const batches = shards.map((indices) => dataset.batch(indices));
    const noises = shards.map((indices, worker) => trainer.drawNoise(indices.length, 1000 + worker));
    const perWorker = await Promise.all(batches.map((batch, worker) => trainer.lossAndGrads(batch, noises[worker])));
    const union = await trainer.lossAndGrads(concatBatches(batches), concatNoise(noises));

    const averaged = weightedMean(perWorker.map((result, worker) => ({ weight: batches[worker].count, tensors: result.grads })));
    const names = Object.keys(trainer.shapes);
    expect(Object.keys(averaged).sort()).toEqual(names.slice().sort());
    for (const name of names) {
      expect(relativeError(averaged[name], union.grads[name]), name).toBeLessThan(1e-5);
    }
    // Losses average the same way.
    const total = batches.reduce((sum, batch) => sum + batch.count, 0);
    const dLoss = perWorker.reduce((sum, result, worker) => sum + result.losses.d * batches[worker].count, 0) / total;
    expect(dLoss).toBeCloseTo(union.losses.d, 5);

    // The coordinator's step (per-network Adam on the averaged gradients) equals the single-process step.
    const start = trainer.getWeights();
    const coordinatorWeights = structuredClone(start);
    const singleWeights = structuredClone(start);
    for (const network of Object.keys(dcgan.networks)) {
      const owned = names.filter((name) => dcgan.networkOf(name) === network);
      adamStep(coordinatorWeights, averaged, createAdamState(coordinatorWeights, owned), dcgan.networks[network]);
      adamStep(singleWeights, union.grads, createAdamState(singleWeights, owned), dcgan.networks[network]);
    }
    for (const name of names) {
      const movedCoordinator = coordinatorWeights[name].map((value, i) => value - start[name][i]);
      const movedSingle = singleWeights[name].map((value, i) => value - start[name][i]);
      expect(relativeError(movedCoordinator, movedSingle), name).toBeLessThan(1e-4);
    }
  });

  it('every tensor gets a finite, non-zero gradient and no tensor leaks', async () => {
    const batch = loadMnist().batch([1, 2, 3, 4]);
    const before = tf.memory().numTensors;
    const { grads, losses } = await trainer.lossAndGrads(batch, trainer.drawNoise(4, 7));
    expect(tf.memory().numTensors).toBe(before);
    expect(Number.isFinite(losses.d) && Number.isFinite(losses.g)).toBe(true);
    for (const [name, values] of Object.entries(grads)) {
      expect(values.length, name).toBe(trainer.shapes[name].reduce((a, b) => a * b, 1));
      expect(values.every(Number.isFinite), name).toBe(true);
      expect(values.some((value) => value !== 0), name).toBe(true);
    }
  });

  it('assigns every tensor to the network that owns it', () => {
    const networks = Object.keys(trainer.shapes).map((name) => dcgan.networkOf(name));
    expect(new Set(networks)).toEqual(new Set(['generator', 'discriminator']));
    expect(Object.keys(trainer.shapes).filter((name) => name.startsWith('g_')).every((name) => dcgan.networkOf(name) === 'generator')).toBe(true);
  });
});
