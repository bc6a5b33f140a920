import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMnist } from '../../data/mnist.ts';
import { adamStep, createAdamState } from '../../training/adam.ts';
import { registerWasmConvKernels } from '../../tfjs/wasm-conv-kernels.ts';
import { describeTrainerContract } from '../trainer-contract.ts';
import { vae, VaeTrainer } from './vae.ts';

// A narrow model keeps the test quick; the architecture is the default one.
const config = vae.parseConfig({ width: 8, latentDim: 8 });

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
});

describeTrainerContract({ spec: vae, config, warmUpSteps: 5, warmUpLearningRate: 1e-3 });

describe('vae: training and reconstruction', () => {
  let trainer: VaeTrainer;

  beforeAll(() => {
    trainer = new VaeTrainer(config);
  });
  afterAll(() => trainer.dispose());

  it('the loss falls over 30 Adam steps on a fixed batch', async () => {
    const weights = trainer.initialWeights(1);
    const state = createAdamState(weights);
    const batch = loadMnist().batch(Array.from({ length: 16 }, (_, i) => i * 613));
    const losses: Record<string, number>[] = [];
    for (let step = 0; step < 30; step++) {
      trainer.setWeights(weights);
      const result = await trainer.lossAndGrads(batch, trainer.drawNoise(16, step));
      losses.push(result.losses);
      adamStep(weights, result.grads, state, vae.networks.vae);
    }
    const [first, last] = [losses[0], losses[losses.length - 1]];
    // From 784 ln 2 (every pixel at 0.5) the decoder first learns the dark background; the KL grows as the codes start to carry the digits.
    expect(last.loss).toBeLessThan(0.9 * first.loss);
    expect(last.reconstruction).toBeLessThan(first.reconstruction - 50);
    expect(last.kl).toBeGreaterThan(first.kl);
    for (const { reconstruction, kl, loss } of losses) {
      expect(kl).toBeGreaterThanOrEqual(0);
      expect(loss).toBeCloseTo(reconstruction + config.beta * kl, 2);
    }
  });

  it('reconstructs images into the same shape, in [0, 1], without leaking', async () => {
    const images = loadMnist().batch([0, 5000, 9000]).images;
    const before = tf.memory().numTensors;
    const reconstructed = await trainer.reconstruct(images);
    expect(tf.memory().numTensors).toBe(before);
    expect(reconstructed.length).toBe(images.length);
    expect(reconstructed.every((value) => value >= 0 && value <= 1)).toBe(true);
    await expect(trainer.reconstruct(images.subarray(1))).rejects.toThrow(/whole number of 28x28x1 images, got 2351 values/);
  });

  it('weighs the KL term by beta', async () => {
    const heavy = new VaeTrainer(vae.parseConfig({ ...config, beta: 4 }));
    try {
      const weights = trainer.initialWeights(2);
      heavy.setWeights(weights);
      trainer.setWeights(weights);
      const batch = loadMnist().batch([3, 4]);
      const noise = trainer.drawNoise(2, 9);
      const [plain, weighted] = await Promise.all([trainer.lossAndGrads(batch, noise), heavy.lossAndGrads(batch, noise)]);
      expect(weighted.losses.kl).toBeCloseTo(plain.losses.kl, 4);
      expect(weighted.losses.loss - weighted.losses.reconstruction).toBeCloseTo(4 * plain.losses.kl, 3);
    } finally {
      heavy.dispose();
    }
  });

  it('exports the decoder: latents in, images out', () => {
    const model = trainer.exportModel();
    expect(model.inputs[0].shape).toEqual([null, config.latentDim]);
    expect(model.outputs[0].shape).toEqual([null, 28, 28, 1]);
  });
});
