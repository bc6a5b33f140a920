import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMnist } from '../data/mnist.ts';
import { registerWasmConvKernels } from '../tfjs/wasm-conv-kernels.ts';
import { DEFAULT_CLASSIFIER_CONFIG, type ClassifierConfig } from './classifier.ts';
import { outlierImages } from './outliers.ts';
import { drawRows } from './rows.ts';
import { accuracy, trainClassifier } from './train-classifier.ts';

const mnist = loadMnist();
const rows = drawRows(mnist.count, 900, 1);
const train = mnist.batch(rows.subarray(0, 600));
const test = mnist.batch(rows.subarray(600));
// A small one, so the tests take seconds: the same code path as the real classifier.
const config: ClassifierConfig = { ...DEFAULT_CLASSIFIER_CONFIG, filters: [4, 8], features: 16, epochs: 6, learningRate: 3e-3 };

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
});

describe('trainClassifier', () => {
  it('trains the same weights twice from the same config (seeded initializers, shuffles and outliers)', async () => {
    const weightsOf = async () => {
      const model = await trainClassifier({ ...config, epochs: 1 }, train);
      const values = model.getWeights().map((weight) => Array.from(weight.dataSync()));
      model.dispose();
      return values;
    };
    const first = await weightsOf();
    expect(await weightsOf()).toEqual(first);
  });

  it('learns digits: a small net on 600 digits beats chance by far', async () => {
    const losses: number[] = [];
    const model = await trainClassifier(config, train, { onEpoch: (_, loss) => losses.push(loss) });
    try {
      expect(losses).toHaveLength(6);
      expect(losses[5]).toBeLessThan(losses[0]);
      expect(await accuracy(model, test)).toBeGreaterThan(0.6);
    } finally {
      model.dispose();
    }
  });
});

describe('outlierImages', () => {
  it('makes seeded non-digits of the image size, in [0, 1]', () => {
    const a = outlierImages(8, train, [28, 28, 1], 5);
    expect(a).toHaveLength(8 * 784);
    expect(Array.from(outlierImages(8, train, [28, 28, 1], 5))).toEqual(Array.from(a));
    expect(a.every((value) => value >= 0 && value <= 1)).toBe(true);
    // Shuffled pixels keep a real digit's ink: the same multiset of values as some training image.
    const shuffled = Array.from(a.subarray(2 * 784, 3 * 784)).sort();
    const matches = Array.from({ length: train.count }, (_, n) => Array.from(train.images.subarray(n * 784, (n + 1) * 784)).sort()).some((values) =>
      values.every((value, i) => value === shuffled[i]),
    );
    expect(matches).toBe(true);
  });
});
