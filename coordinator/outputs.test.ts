import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcgan, DcganTrainer } from '../shared/models/gan/dcgan.ts';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import { exportLayersModel, sampleGridPng, writeFileAtomic } from './outputs.ts';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-outputs-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sampleGridPng', () => {
  // 5 grey images of 2 x 3 pixels: a 3 x 2 grid, one-pixel gutters.
  const [height, width] = [2, 3];
  const count = 5;
  const pixel = (n: number, y: number, x: number) => (n * height * width + y * width + x) / 29;
  const images = Float32Array.from({ length: count * height * width }, (_, i) => pixel(Math.floor(i / 6), Math.floor((i % 6) / 3), i % 3));

  it('lays the images out on a square grid with white gutters', () => {
    const png = PNG.sync.read(Buffer.from(sampleGridPng(images, count, [height, width, 1])));
    expect([png.width, png.height]).toEqual([3 * (width + 1) + 1, 2 * (height + 1) + 1]);
    const at = (x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 4));
    for (let n = 0; n < count; n++) {
      const left = 1 + (n % 3) * (width + 1);
      const top = 1 + Math.floor(n / 3) * (height + 1);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const grey = Math.round(pixel(n, y, x) * 255);
          expect(at(left + x, top + y), `image ${n} (${x}, ${y})`).toEqual([grey, grey, grey, 255]);
        }
      }
    }
    // Image 4 (second row, middle column), pixel (x 2, y 1): value 29/29 -> 255. Its neighbour image 3, pixel (0, 0): 18/29.
    expect(at(1 + 1 * 4 + 2, 1 + 3 + 1)).toEqual([255, 255, 255, 255]);
    expect(at(1, 4)).toEqual([158, 158, 158, 255]);
    // Gutters, and the empty sixth cell, are white.
    for (const [x, y] of [
      [0, 0],
      [4, 1],
      [12, 6],
      [5, 3],
      [9, 4],
      [11, 5],
    ])
      expect(at(x, y), `(${x}, ${y})`).toEqual([255, 255, 255, 255]);
  });

  it('clamps to [0, 1] and keeps colour channels apart', () => {
    // One 1 x 2 RGB image: (-1, 0.5, 2) and (1, 0, 0.2).
    const png = PNG.sync.read(Buffer.from(sampleGridPng(Float32Array.from([-1, 0.5, 2, 1, 0, 0.2]), 1, [1, 2, 3])));
    expect([png.width, png.height]).toEqual([4, 3]);
    expect(Array.from(png.data.subarray((1 * 4 + 1) * 4, (1 * 4 + 3) * 4))).toEqual([0, 128, 255, 255, 255, 0, 51, 255]);
  });
});

describe('writeFileAtomic', () => {
  it('writes the whole file, creating folders, and leaves no temporary file', async () => {
    const file = path.join(dir, 'atomic', 'deep', 'a.txt');
    await writeFileAtomic(file, 'first, the longer version');
    await writeFileAtomic(file, 'second');
    expect(fs.readFileSync(file, 'utf8')).toBe('second');
    expect(fs.readdirSync(path.dirname(file))).toEqual(['a.txt']);
  });
});

describe('exportLayersModel', () => {
  let trainer: DcganTrainer;

  beforeAll(async () => {
    registerWasmConvKernels();
    await tf.setBackend('wasm');
    trainer = new DcganTrainer(dcgan.parseConfig({ width: 4, latentDim: 8 }), 3);
  });
  afterAll(() => trainer.dispose());

  /** Loads what exportLayersModel wrote, from the files, through tfjs's own loader. */
  function loadFrom(modelDir: string): Promise<tf.LayersModel> {
    const modelJson = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
    const weights = fs.readFileSync(path.join(modelDir, modelJson.weightsManifest[0].paths[0]));
    const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
    return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0].weights, weightData }));
  }

  it('writes model.json and weights.bin that load back into a model predicting the same', async () => {
    const modelDir = path.join(dir, 'model');
    await exportLayersModel(trainer.exportModel(), modelDir, { round: 12, jobId: 'unit' });
    expect(fs.readdirSync(modelDir).sort()).toEqual(['model.json', 'weights.bin']);
    // The staging folder was swapped in, not left beside it.
    expect(fs.readdirSync(dir).filter((name) => name.includes('staging'))).toEqual([]);

    const modelJson = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
    expect(modelJson.format).toBe('layers-model');
    expect(modelJson.userDefinedMetadata).toEqual({ round: 12, jobId: 'unit' });
    // The generator's float32 weights, nothing of the discriminator.
    const expectedBytes = Object.entries(trainer.shapes)
      .filter(([name]) => name.startsWith('g_'))
      .reduce((sum, [, shape]) => sum + 4 * shape.reduce((a, b) => a * b, 1), 0);
    expect(fs.statSync(path.join(modelDir, 'weights.bin')).size).toBe(expectedBytes);

    const loaded = await loadFrom(modelDir);
    const latents = tf.randomNormal([3, 8], 0, 1, 'float32', 5);
    const expected = trainer.exportModel().predict(latents) as tf.Tensor;
    const actual = loaded.predict(latents) as tf.Tensor;
    expect(actual.shape).toEqual([3, 28, 28, 1]);
    expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([latents, expected, actual]);
    loaded.dispose();
  });

  it('replaces an earlier export whole', async () => {
    const modelDir = path.join(dir, 'model-replaced');
    fs.mkdirSync(modelDir, { recursive: true });
    fs.writeFileSync(path.join(modelDir, 'stale.bin'), 'old');
    const before = trainer.getWeights();
    await exportLayersModel(trainer.exportModel(), modelDir);
    // New weights, exported over the first export.
    const changed = Object.fromEntries(Object.entries(before).map(([name, values]) => [name, values.map((value) => value + 0.01)]));
    trainer.setWeights(changed);
    await exportLayersModel(trainer.exportModel(), modelDir);
    expect(fs.readdirSync(modelDir).sort()).toEqual(['model.json', 'weights.bin']);
    const loaded = await loadFrom(modelDir);
    const kernel = loaded.getLayer('g_dense').getWeights()[0];
    expect(Array.from(kernel.dataSync())).toEqual(Array.from(changed['g_dense/kernel']));
    loaded.dispose();
    trainer.setWeights(before);
  });
});
