import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Evaluator } from '../../shared/eval/evaluator.ts';
import { drawRows, pickRows } from '../../shared/eval/rows.ts';
import { cdcgan } from '../../shared/models/gan/cdcgan.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { vae } from '../../shared/models/vae/vae.ts';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { createUniform } from '../../shared/training/random.ts';
import { registerWasmConvKernels } from '../../shared/tfjs/wasm-conv-kernels.ts';
import { getEvalDataset } from './datasets.ts';
import { loadEvaluator, loadEvalSplit, type EvalSplit } from './load.ts';
import { classifierHash, COMMITTED_WEIGHTS_DIR, weightsStem } from './weights.ts';

/*
 * The evaluator on the committed MNIST classifier: real digits score near
 * the floor, broken generators far above it, and the class figures of real
 * digits are what the classifier's accuracy says they should be.
 */

const IMAGE = 28 * 28;
let evaluator: Evaluator;
let split: EvalSplit;
const trainingLog: string[] = [];

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
  evaluator = await loadEvaluator('mnist', { log: (line) => trainingLog.push(line) });
  split = loadEvalSplit('mnist');
});
afterAll(() => evaluator?.dispose());

/** `count` held-out digits drawn at random (the split is stored class by class). */
function heldOutDigits(count: number, seed: number) {
  return pickRows(split.heldOut, drawRows(split.heldOut.count, count, seed), IMAGE);
}

describe('loadEvaluator', () => {
  it('uses the committed weights: no training, and the accuracy their record states', () => {
    expect(trainingLog).toEqual([]);
    const { classifier } = getEvalDataset('mnist');
    const stem = weightsStem('mnist', classifierHash('mnist', classifier, split.train));
    const record = JSON.parse(readFileSync(join(COMMITTED_WEIGHTS_DIR, `${stem}.json`), 'utf8'));
    expect(evaluator.heldOutReference.accuracy).toBeCloseTo(record.heldOutAccuracy, 3);
    expect(evaluator.heldOutReference.accuracy).toBeGreaterThan(0.97);
  });

  it('refuses a dataset it has no evaluator for, naming the field', async () => {
    await expect(loadEvaluator('cifar10')).rejects.toMatchObject({ code: ErrorCode.InvalidConfig, field: 'dataset.id' });
  });
});

describe('Evaluator.score', () => {
  const count = 256;

  it('puts real held-out digits near the floor, one repeated digit and uniform noise far above it', async () => {
    const real = await evaluator.score(heldOutDigits(count, 1));
    const repeatedImages = new Float32Array(count * IMAGE);
    for (let n = 0; n < count; n++) repeatedImages.set(split.heldOut.images.subarray(0, IMAGE), n * IMAGE);
    const repeated = await evaluator.score({ images: repeatedImages, count });
    const uniform = createUniform(2);
    const noise = await evaluator.score({ images: new Float32Array(count * IMAGE).map(() => uniform()), count });

    const floor = real.frechetFloor;
    expect(repeated.frechetFloor).toBe(floor);
    expect(real.frechet / floor).toBeGreaterThan(0.5);
    expect(real.frechet / floor).toBeLessThan(1.5);
    // Measured: about 80x and 280x the floor (held-out digits: 0.8x, being part of the reference).
    expect(repeated.frechet).toBeGreaterThan(10 * floor);
    expect(noise.frechet).toBeGreaterThan(2 * repeated.frechet);

    // One digit: recognisable, but one class and none of the real variety.
    expect(repeated.coverageEntropy).toBe(0);
    expect(repeated.recall).toBeLessThan(0.05);
    // Noise: not a digit at all.
    expect(noise.recognisable).toBeLessThan(0.05);
    expect(noise.precision).toBeLessThan(0.05);
    expect(noise.recall).toBeLessThan(0.05);
  });

  it('gives real digits precision and recall near 1, and the held-out class figures', async () => {
    const real = await evaluator.scoreReal(count);
    expect(real.precision).toBeGreaterThan(0.8);
    expect(real.recall).toBeGreaterThan(0.8);
    expect(real.coverageEntropy).toBeGreaterThan(0.98);
    const heldOut = await evaluator.score(heldOutDigits(1000, 3));
    expect(heldOut.recognisable).toBeCloseTo(evaluator.heldOutReference.recognisable, 6);
    expect(evaluator.heldOutReference.recognisable).toBeGreaterThan(0.9);
  });

  it('shrinks the floor as the count grows (the small-count bias), and caches it per count', async () => {
    const small = await evaluator.frechetFloor(64);
    const large = await evaluator.frechetFloor(1000);
    expect(small).toBeGreaterThan(3 * large);
    expect(evaluator.frechetFloor(64)).toBe(evaluator.frechetFloor(64));
  });

  it("scores label agreement for labelled samples, and a classification accuracy score near the classifier's accuracy", async () => {
    // 2,000 real training digits, 4 epochs: a few seconds, within a few points of the full classifier.
    const train = pickRows(split.train, drawRows(split.train.count, 2000, 4), IMAGE);
    const report = await evaluator.score(train, { cas: true, casEpochs: 4 });
    expect(report.labelAgreement).toBeGreaterThan(0.97);
    expect(report.cas).toBeGreaterThan(evaluator.heldOutReference.accuracy - 0.05);
    expect(report.cas).toBeLessThanOrEqual(1);
  });

  it('refuses too few samples, pixels that do not fit and CAS without labels, naming the field', async () => {
    await expect(evaluator.score({ images: new Float32Array(5 * IMAGE), count: 5 })).rejects.toMatchObject({ code: ErrorCode.InvalidConfig, field: 'count' });
    await expect(evaluator.score({ images: new Float32Array(20 * IMAGE - 1), count: 20 })).rejects.toMatchObject({
      code: ErrorCode.TensorMismatch,
      field: 'images',
    });
    await expect(
      evaluator.score({ images: new Float32Array(20 * IMAGE), labels: new Int32Array(20).fill(-1), count: 20 }, { cas: true }),
    ).rejects.toMatchObject({ code: ErrorCode.InvalidConfig, field: 'labels' });
  });
});

describe('Evaluator.scoreTrainer', () => {
  it('scores an unconditional generator without label figures', async () => {
    const trainer = dcgan.createTrainer(dcgan.parseConfig({ width: 4, latentDim: 8 }));
    try {
      const report = await evaluator.scoreTrainer(trainer, dcgan, 64, 1);
      expect(report.count).toBe(64);
      expect(report.labelAgreement).toBeUndefined();
      expect(report.reconstructionRecognisable).toBeUndefined();
      // An untrained generator makes grey mush: far above the floor.
      expect(report.frechet).toBeGreaterThan(10 * report.frechetFloor);
    } finally {
      trainer.dispose();
    }
  });

  it('asks a conditional generator for every class in turn', async () => {
    const trainer = cdcgan.createTrainer(cdcgan.parseConfig({ width: 4, latentDim: 8 }));
    const asked: number[] = [];
    const sample = trainer.sample.bind(trainer);
    trainer.sample = (count, seed, labels) => {
      asked.push(...(labels ?? []));
      return sample(count, seed, labels);
    };
    try {
      const report = await evaluator.scoreTrainer(trainer, cdcgan, 300, 1);
      expect(asked).toEqual(Array.from({ length: 300 }, (_, i) => i % 10));
      expect(report.labelAgreement).toBeGreaterThanOrEqual(0);
    } finally {
      trainer.dispose();
    }
  });

  it("scores an autoencoder's reconstructions of held-out digits", async () => {
    const trainer = vae.createTrainer(vae.parseConfig({ width: 4, latentDim: 4 }));
    try {
      const report = await evaluator.scoreTrainer(trainer, vae, 64, 1);
      expect(report.reconstructionRecognisable).toBeGreaterThanOrEqual(0);
      expect(report.reconstructionAgreement).toBeGreaterThanOrEqual(0);
      expect(report.reconstructionAgreement).toBeLessThanOrEqual(1);
    } finally {
      trainer.dispose();
    }
  });
});
