import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { weightedMean } from '../aggregate/weighted-mean.ts';
import type { NamedArrays } from '../codec/types.ts';
import { loadMnist } from '../data/mnist.ts';
import { adamStep, createAdamState } from '../training/adam.ts';
import { concatNoise } from '../training/noise.ts';
import { syntheticBatch } from '../worker/model-speed.ts';
import { concatBatches, relativeError } from './admission.ts';
import { defaultDataShape, pixelsOf } from './data-shape.ts';
import type { Batch, DataShape, ModelSpec, Trainer } from './types.ts';

/*
 * The contract every model family's trainer keeps, as one suite each family's
 * test file runs on its own spec (the caller picks the backend first). The
 * central clause: N workers' sample-weighted mean gradient equals one process's
 * gradient on the union batch, the premise of the whole coordinator.
 */

export interface ContractOptions<Config extends object> {
  spec: ModelSpec<Config>;
  /** A small config: the architecture is the default one, only narrower. */
  config: Config;
  /**
   * Adam steps on MNIST before gradients are compared. At initialization some
   * gradients are differences of near-equal halves (a GAN's D scores real and
   * fake alike), where float32 rounding alone is 1e-4 of the result; the
   * state training runs in has no such cancellation.
   */
  warmUpSteps: number;
  warmUpLearningRate: number;
  /** The data the trainer is built for; default: the family's own shape (MNIST's for the built-in families). */
  data?: DataShape;
}

/** As many examples as MNIST holds, so the same indices serve either source. */
const EXAMPLES = 10_000;

/**
 * The contract's examples by index: MNIST's digits at 28x28x1 with ten
 * classes, else seeded synthetic images of the data's shape (example i seeded
 * by i, its label i modulo the classes).
 */
export function contractExamples(data?: DataShape): (indices: number[]) => Batch {
  if (!data || (data.imageShape.join('x') === '28x28x1' && data.classes === 10)) {
    const mnist = loadMnist();
    return (indices) => mnist.batch(indices);
  }
  return (indices) => {
    const batch = concatBatches(indices.map((index) => syntheticBatch(data, 1, index + 1)));
    batch.labels.set(indices.map((index) => (data.classes > 0 ? index % data.classes : 0)));
    return batch;
  };
}

// The two helpers the contract shares with the admission checks a family passes at load.
export { concatBatches, relativeError } from './admission.ts';

/** Weights after `steps` per-network Adam steps from initialWeights(42), on batches of 16 spread over the examples (MNIST's by default). */
export async function warmedUpWeights(spec: ModelSpec<any>, trainer: Trainer, steps: number, learningRate: number, data?: DataShape): Promise<NamedArrays> {
  const weights = trainer.initialWeights(42);
  const names = Object.keys(trainer.shapes);
  const optimizers = Object.keys(spec.networks).map((network) => ({
    network,
    state: createAdamState(
      weights,
      names.filter((name) => spec.networkOf(name) === network),
    ),
  }));
  const examples = contractExamples(data);
  for (let step = 0; step < steps; step++) {
    trainer.setWeights(weights);
    const batch = examples(Array.from({ length: 16 }, (_, i) => (step * 613 + i * 389) % EXAMPLES));
    const { grads } = await trainer.lossAndGrads(batch, trainer.drawNoise(16, step));
    for (const { network, state } of optimizers) adamStep(weights, grads, state, { ...spec.networks[network], learningRate });
  }
  return weights;
}

/**
 * The gradient-equivalence experiment: 3 workers on unequal shards (3, 5, 8
 * examples, spanning all ten digits, so the weighting by samples matters),
 * and one process on their union with the same per-example noise.
 */
export async function shardedAndUnionGradients(trainer: Trainer, data?: DataShape) {
  const examples = contractExamples(data);
  const shards = [
    [0, 1500, 3000],
    [4000, 5000, 6000, 7000, 8000],
    [10, 1010, 2010, 3010, 4010, 5010, 6010, 9010],
  ];
  const batches = shards.map((indices) => examples(indices));
  const noises = shards.map((indices, worker) => trainer.drawNoise(indices.length, 1000 + worker));
  const perWorker = await Promise.all(batches.map((batch, worker) => trainer.lossAndGrads(batch, noises[worker])));
  const union = await trainer.lossAndGrads(concatBatches(batches), concatNoise(noises));
  const averaged = weightedMean(perWorker.map((result, worker) => ({ weight: batches[worker].count, tensors: result.grads })));
  return { batches, noises, perWorker, union, averaged };
}

/** Runs the contract suite against one model family. */
export function describeTrainerContract<Config extends object>(options: ContractOptions<Config>): void {
  const { spec, config } = options;
  const data = options.data ?? defaultDataShape(spec);

  describe(`${spec.id}: the trainer contract at ${data.imageShape.join('x')}`, () => {
    let trainer: Trainer;

    beforeAll(async () => {
      trainer = spec.createTrainer(config, data);
      trainer.setWeights(await warmedUpWeights(spec, trainer, options.warmUpSteps, options.warmUpLearningRate, data));
    });
    afterAll(() => trainer.dispose());

    it('the sample-weighted mean of 3 workers on disjoint shards equals the union batch', async () => {
      const { batches, perWorker, union, averaged } = await shardedAndUnionGradients(trainer, data);
      const names = Object.keys(trainer.shapes);
      expect(Object.keys(averaged).sort()).toEqual(names.slice().sort());
      for (const name of names) expect(relativeError(averaged[name], union.grads[name]), name).toBeLessThan(1e-5);
      // Losses average the same way.
      const total = batches.reduce((sum, batch) => sum + batch.count, 0);
      for (const [name, value] of Object.entries(union.losses)) {
        const mean = perWorker.reduce((sum, result, worker) => sum + result.losses[name] * batches[worker].count, 0) / total;
        expect(Math.abs(mean - value), name).toBeLessThan(1e-5 * Math.max(1, Math.abs(value)));
      }
    });

    it('every tensor gets a finite, non-zero gradient of its shape, and no tensor leaks', async () => {
      const batch = contractExamples(data)([1, 2000, 4000, 8000]);
      const noise = trainer.drawNoise(4, 7);
      const before = tf.memory().numTensors;
      const { grads, losses } = await trainer.lossAndGrads(batch, noise);
      await trainer.sample(3, 1);
      expect(tf.memory().numTensors).toBe(before);
      for (const [name, value] of Object.entries(losses)) expect(Number.isFinite(value), name).toBe(true);
      // What the coordinator accepts from workers: exactly the names the spec declares.
      expect(Object.keys(losses).sort()).toEqual([...spec.lossNames].sort());
      expect(Object.keys(grads).sort()).toEqual(Object.keys(trainer.shapes).sort());
      for (const [name, values] of Object.entries(grads)) {
        expect(values.length, name).toBe(trainer.shapes[name].reduce((a, b) => a * b, 1));
        expect(values.every(Number.isFinite), name).toBe(true);
        expect(
          values.some((value) => value !== 0),
          name,
        ).toBe(true);
      }
    });

    it('assigns every tensor to one of its networks, and every network owns a tensor', () => {
      const owners = Object.keys(trainer.shapes).map((name) => spec.networkOf(name));
      expect(new Set(owners)).toEqual(new Set(Object.keys(spec.networks)));
    });

    it('draws the same initial weights for the same seed, other ones for another', () => {
      const first = trainer.initialWeights(5);
      const again = trainer.initialWeights(5);
      const other = trainer.initialWeights(6);
      for (const name of Object.keys(trainer.shapes)) expect(again[name], name).toEqual(first[name]);
      expect(Object.keys(trainer.shapes).some((name) => relativeError(other[name], first[name]) > 0.1)).toBe(true);
    });

    it('frees every tensor it made when disposed', () => {
      const before = tf.memory().numTensors;
      spec.createTrainer(config, data).dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it("samples images in [0, 1] of the data's shape, the same for the same seed", async () => {
      const pixels = pixelsOf(data);
      const { images, labels } = await trainer.sample(5, 3);
      expect(images.length).toBe(5 * pixels);
      expect(images.every((value) => value >= 0 && value <= 1)).toBe(true);
      const expectedLabels = Array.from({ length: 5 }, (_, i) => (spec.classes > 0 ? i % data.classes : -1));
      expect([...labels]).toEqual(expectedLabels);
      expect((await trainer.sample(5, 3)).images).toEqual(images);
    });
  });
}
