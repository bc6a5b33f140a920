import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerWasmConvKernels } from '../tfjs/wasm-conv-kernels.ts';
import { checkModel } from './admission.ts';
import { checkDataShape, dataShapeError } from './data-shape.ts';
import { getModel } from './registry.ts';
import type { DataShape } from './types.ts';

/** Narrow versions of the default architectures: the geometry is what is under test. */
const SMALL: Record<string, object> = {
  dcgan: { width: 4, latentDim: 8 },
  cdcgan: { width: 4, latentDim: 8 },
  vae: { width: 4, latentDim: 4 },
  ddpm: { baseChannels: 4, timeEmbeddingDim: 8, samplingSteps: 2 },
  cddpm: { baseChannels: 4, timeEmbeddingDim: 8, samplingSteps: 2 },
};
const RGB32: DataShape = { imageShape: [32, 32, 3], classes: 3 };

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
});

describe('models take their image shape from the dataset', () => {
  // The admission checks: built for the shape, a finite gradient for every tensor, workers' mean = union batch, samples of the shape.
  it.each(Object.keys(SMALL))('%s builds for 32x32x3 with 3 classes and keeps the model contract there', async (id) => {
    const spec = getModel(id);
    const checks = await checkModel(spec, spec.parseConfig(SMALL[id]), RGB32);
    expect(checks.filter((check) => !check.passed)).toEqual([]);
    expect(checks.map((check) => check.name)).toEqual(['networks', 'gradients', 'losses', 'data parallelism', 'samples']);
  });

  it('builds G and D around the data: 8x8 grids for 32x32, three output channels, three classes', () => {
    const gan = getModel('cdcgan');
    const trainer = gan.createTrainer(gan.parseConfig(SMALL.cdcgan), RGB32);
    try {
      const dense = Object.entries(trainer.shapes).find(([name]) => name.startsWith('g_dense') && name.includes('kernel'))![1];
      // latents (8) + label embedding (3 classes) -> 8 x 8 x 2w.
      expect(dense).toEqual([8 + 3, 8 * 8 * 2 * 4]);
      const up2 = Object.entries(trainer.shapes).find(([name]) => name.startsWith('g_up2') && name.includes('kernel'))![1];
      expect(up2[2]).toBe(3);
    } finally {
      trainer.dispose();
    }
  });

  it('names the U-Net levels by their height: the 28x28 names stay those of MNIST checkpoints', () => {
    const ddpm = getModel('ddpm');
    const names = (data?: DataShape) => {
      const trainer = ddpm.createTrainer(ddpm.parseConfig(SMALL.ddpm), data);
      const result = Object.keys(trainer.shapes);
      trainer.dispose();
      return result;
    };
    expect(names().some((name) => name.startsWith('down28_'))).toBe(true);
    expect(names().some((name) => name.startsWith('up7_'))).toBe(true);
    const rgb = names(RGB32);
    expect(rgb.some((name) => name.startsWith('down32_'))).toBe(true);
    expect(rgb.some((name) => name.startsWith('up8_'))).toBe(true);
  });

  it('refuses shapes a family cannot make, and conditional families on unlabelled data, naming the reason', () => {
    expect(dataShapeError(getModel('dcgan'), { imageShape: [30, 30, 3], classes: 0 })).toMatch(/multiples of 4.*30x30/);
    expect(dataShapeError(getModel('vae'), { imageShape: [4, 4, 1], classes: 0 })).toMatch(/at least 8/);
    expect(dataShapeError(getModel('ddpm'), { imageShape: [64, 48, 3], classes: 0 })).toBeUndefined();
    expect(dataShapeError(getModel('cdcgan'), { imageShape: [32, 32, 3], classes: 0 })).toMatch(/conditioned on classes; the dataset has none/);
    expect(() => checkDataShape(getModel('cddpm'), { imageShape: [32, 32, 3], classes: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', field: 'dataset.id' }),
    );
  });

  it('keeps a family without a dataShapeError to its own shape and classes', () => {
    const fixed = { ...getModel('dcgan'), id: 'fixed', dataShapeError: undefined, classes: 10 };
    expect(dataShapeError(fixed, { imageShape: [28, 28, 1], classes: 10 })).toBeUndefined();
    expect(dataShapeError(fixed, { imageShape: [32, 32, 3], classes: 10 })).toMatch(/makes 28x28x1 images only/);
    expect(dataShapeError(fixed, { imageShape: [28, 28, 1], classes: 3 })).toMatch(/conditioned on 10 classes; the dataset has 3/);
  });
});
