import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeError, shardedAndUnionGradients, warmedUpWeights } from '../trainer-contract.ts';
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
    // A few steps first: at initialization D's output bias gradient is the difference of two equal halves,
    // where float32 rounding alone is 1e-4 of the result (see trainer-contract.ts).
    trainer.setWeights(await warmedUpWeights(dcgan, trainer, 10, 2e-3));
  });

  afterAll(() => trainer.dispose());

  it('the sample-weighted mean of 3 workers on disjoint shards equals the union batch, and so does the Adam step', async () => {
    const { batches, perWorker, union, averaged } = await shardedAndUnionGradients(trainer);
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
    expect(Object.keys(losses).sort()).toEqual([...dcgan.lossNames].sort());
    for (const [name, values] of Object.entries(grads)) {
      expect(values.length, name).toBe(trainer.shapes[name].reduce((a, b) => a * b, 1));
      expect(values.every(Number.isFinite), name).toBe(true);
      expect(
        values.some((value) => value !== 0),
        name,
      ).toBe(true);
    }
  });

  it('one joint pass gives what the two networks’ separate passes give', async () => {
    const batch = loadMnist().batch([5, 6, 7, 8, 9, 10]);
    const noise = trainer.drawNoise(6, 11);
    const joint = await trainer.lossAndGrads(batch, noise);
    const d = await trainer.lossAndGrads(batch, noise, ['discriminator']);
    const g = await trainer.lossAndGrads(batch, noise, ['generator']);
    expect(joint.losses.d).toBeCloseTo(d.losses.d, 5);
    expect(joint.losses.g).toBeCloseTo(g.losses.g, 5);
    for (const [name, values] of Object.entries({ ...d.grads, ...g.grads })) expect(relativeError(joint.grads[name], values), name).toBeLessThan(1e-5);
    expect(Object.keys(joint.grads).sort()).toEqual(Object.keys(trainer.shapes).sort());
  });

  it('assigns every tensor to the network that owns it', () => {
    const networks = Object.keys(trainer.shapes).map((name) => dcgan.networkOf(name));
    expect(new Set(networks)).toEqual(new Set(['generator', 'discriminator']));
    expect(
      Object.keys(trainer.shapes)
        .filter((name) => name.startsWith('g_'))
        .every((name) => dcgan.networkOf(name) === 'generator'),
    ).toBe(true);
  });
});

describe.each([
  { generatorNorm: 'pixel', discriminatorNorm: 'none', generatorDepth: 2 },
  { generatorNorm: 'layer', discriminatorNorm: 'spectral', generatorDepth: 2 },
  { generatorNorm: 'layer', discriminatorNorm: 'spectral', generatorDepth: 3 },
] as const)('dcgan with G norm $generatorNorm, D norm $discriminatorNorm, G depth $generatorDepth: every example still on its own', (options) => {
  const config = dcgan.parseConfig({ width: 8, latentDim: 16, ...options });
  let trainer: DcganTrainer;

  beforeAll(async () => {
    trainer = new DcganTrainer(config);
    trainer.setWeights(await warmedUpWeights(dcgan, trainer, 10, 2e-3));
  });
  afterAll(() => trainer.dispose());

  it('the sample-weighted mean of 3 workers on disjoint shards equals the union batch', async () => {
    const { averaged, union } = await shardedAndUnionGradients(trainer);
    for (const name of Object.keys(trainer.shapes)) expect(relativeError(averaged[name], union.grads[name]), name).toBeLessThan(1e-5);
  });

  it('computes one network alone as it computes it beside the other', async () => {
    const batch = loadMnist().batch([5, 1005, 2005, 3005]);
    const noise = trainer.drawNoise(4, 3);
    const both = await trainer.lossAndGrads(batch, noise);
    for (const [network, loss] of [
      ['discriminator', 'd'],
      ['generator', 'g'],
    ] as const) {
      const alone = await trainer.lossAndGrads(batch, noise, [network]);
      const owned = Object.keys(trainer.shapes).filter((name) => dcgan.networkOf(name) === network);
      expect(Object.keys(alone.grads).sort()).toEqual(owned.sort());
      expect(Object.keys(alone.losses)).toEqual([loss]);
      expect(alone.losses[loss]).toBeCloseTo(both.losses[loss], 5);
      for (const name of owned) expect(relativeError(alone.grads[name], both.grads[name]), name).toBeLessThan(1e-6);
    }
    await expect(trainer.lossAndGrads(batch, noise, ['critic'])).rejects.toThrow(/critic/);
  });
});
