import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMnist } from '../../data/mnist.ts';
import { registerWasmConvKernels } from '../../tfjs/wasm-conv-kernels.ts';
import { describeTrainerContract, warmedUpWeights } from '../trainer-contract.ts';
import { cdcgan, CdcganTrainer } from './cdcgan.ts';

// A narrow model keeps the test quick; the architecture is the default one.
const config = cdcgan.parseConfig({ width: 8, latentDim: 16 });

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
});

describeTrainerContract({ spec: cdcgan, config, warmUpSteps: 10, warmUpLearningRate: 2e-3 });

describe('cdcgan: conditioning on the label', () => {
  let trainer: CdcganTrainer;

  beforeAll(async () => {
    trainer = new CdcganTrainer(config);
    trainer.setWeights(await warmedUpWeights(cdcgan, trainer, 10, 2e-3));
  });
  afterAll(() => trainer.dispose());

  it('generates the labels asked for and reports them', async () => {
    const labels = Int32Array.from([7, 7, 2, 9]);
    const result = await trainer.sample(4, 11, labels);
    expect([...result.labels]).toEqual([7, 7, 2, 9]);
    expect(result.images.length).toBe(4 * 28 * 28);
  });

  it('moves the images as much by the label as by the latents', async () => {
    const pixels = 28 * 28;
    const meanDifference = (a: Float32Array, b: Float32Array, row: number) => {
      let sum = 0;
      for (let i = row * pixels; i < (row + 1) * pixels; i++) sum += Math.abs(a[i] - b[i]);
      return sum / pixels;
    };
    // sample() draws the latents from (count, seed) alone: calls with the same ones share them row by row.
    const allThrees = await trainer.sample(10, 5, new Int32Array(10).fill(3));
    const eachDigit = await trainer.sample(
      10,
      5,
      Int32Array.from({ length: 10 }, (_, i) => i),
    );
    const otherLatents = await trainer.sample(10, 6, new Int32Array(10).fill(3));
    const latentEffect = Array.from({ length: 10 }, (_, row) => meanDifference(allThrees.images, otherLatents.images, row)).reduce((a, b) => a + b) / 10;
    expect(latentEffect).toBeGreaterThan(0);
    const labelEffects = Array.from({ length: 10 }, (_, row) => meanDifference(allThrees.images, eachDigit.images, row));
    expect(labelEffects[3], 'the row with label 3 in both').toBe(0);
    const others = labelEffects.filter((_, row) => row !== 3);
    // Some labels' embeddings lie closer to 3's than others: each must tell, all together as much as the latents.
    for (const [i, effect] of others.entries()) expect(effect, `label ${i < 3 ? i : i + 1} against 3`).toBeGreaterThan(0.1 * latentEffect);
    expect(others.reduce((a, b) => a + b) / others.length).toBeGreaterThan(0.5 * latentEffect);
  });

  it('the discriminator scores the same image differently under different labels', () => {
    const image = tf.tensor4d(loadMnist().batch([0]).images, [1, 28, 28, 1]);
    const scores = tf.tidy(() =>
      Array.from({ length: 10 }, (_, label) => {
        const oneHot = tf.oneHot(tf.tensor1d([label], 'int32'), 10).toFloat();
        return (trainer.discriminator.predict([image, oneHot]) as tf.Tensor).dataSync()[0];
      }),
    );
    image.dispose();
    expect(new Set(scores).size).toBe(10);
  });

  it('refuses a label outside 0..9, naming the example, and leaks nothing', async () => {
    const batch = loadMnist().batch([1, 2]);
    batch.labels[1] = 10;
    const before = tf.memory().numTensors;
    await expect(trainer.lossAndGrads(batch, trainer.drawNoise(2, 1))).rejects.toThrow(/label 10 of example 1/);
    await expect(trainer.sample(2, 1, Int32Array.from([0]))).rejects.toThrow(/2 samples asked for with 1 labels/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
