import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Evaluator, SampleSet } from '../../shared/eval/evaluator.ts';
import { getModel } from '../../shared/models/registry.ts';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { registerWasmConvKernels } from '../../shared/tfjs/wasm-conv-kernels.ts';
import { saveCheckpoint } from '../checkpoint.ts';
import { parseJobConfig } from '../config.ts';
import { Job } from '../job/job.ts';
import { exportLayersModel, sampleGridPng } from '../outputs.ts';
import { loadEvaluator } from './load.ts';
import { openSource } from './sources.ts';

/* What `npm run eval -- PATH` reads, in process: each kind of PATH, and the ones it refuses. */

let dir: string;
let evaluator: Evaluator;

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-eval-sources-'));
  evaluator = await loadEvaluator('mnist');
});
afterAll(() => {
  evaluator?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function writePng(file: string, width: number, height: number, grey: (x: number, y: number) => number): void {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    const value = Math.round(grey(i % width, Math.floor(i / width)) * 255);
    png.data.set([value, value, value, 255], i * 4);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png));
}

describe('openSource', () => {
  it('reads a checkpoint (the file or its folder): the trainer its config names, sampling from the EMA when kept', async () => {
    const spec = getModel('cdcgan');
    const modelConfig = { width: 4, latentDim: 8 };
    const config = parseJobConfig({ id: 'evaljob', model: { id: 'cdcgan', config: modelConfig }, training: { seed: 1 } });
    const trainer = spec.createTrainer(spec.parseConfig(modelConfig));
    const weights = trainer.initialWeights(3);
    const state = Job.initialState(spec, weights, config.dataset.shards);
    state.ema = trainer.initialWeights(4);
    const jobDir = path.join(dir, 'job');
    await saveCheckpoint(jobDir, { config, state, savedAt: new Date(0).toISOString() }, trainer.shapes);
    trainer.dispose();

    for (const target of [jobDir, path.join(jobDir, 'checkpoint.msgpack')]) {
      const source = await openSource(target);
      try {
        expect(source.description).toMatch(/job evaljob \(cdcgan, round 0, EMA weights\)/);
        expect(source).toMatchObject({ dataset: 'mnist', heldOutFraction: 0.1, splitSeed: 1 });
        const report = await source.score(evaluator, 20, 1, {});
        expect(report.count).toBe(20);
        expect(report.labelAgreement).toBeDefined();
      } finally {
        source.dispose();
      }
    }
  });

  it('reads an exported conditional generator: latents and one-hot labels in, tanh mapped to [0, 1]', async () => {
    const spec = getModel('cdcgan');
    const trainer = spec.createTrainer(spec.parseConfig({ width: 4, latentDim: 8 }));
    const modelDir = path.join(dir, 'model');
    await exportLayersModel(trainer.exportModel(), modelDir, { round: 5, jobId: 'evaljob' });
    trainer.dispose();
    const source = await openSource(modelDir);
    try {
      expect(source.description).toMatch(/exported conditional model generator \(job evaljob, round 5\), latent 8, outputs \[-1, 1\]/);
      const report = await source.score(evaluator, 20, 1, {});
      expect(report.labelAgreement).toBeDefined();
    } finally {
      source.dispose();
    }
  });

  it("refuses an exported denoiser: its inputs are not a generator's", async () => {
    const spec = getModel('ddpm');
    const trainer = spec.createTrainer(spec.parseConfig({}));
    const modelDir = path.join(dir, 'unet');
    await exportLayersModel(trainer.exportModel(), modelDir);
    trainer.dispose();
    await expect(openSource(modelDir)).rejects.toMatchObject({
      code: ErrorCode.InvalidConfig,
      message: expect.stringMatching(/not a generator or decoder .*checkpoint/),
    });
  });

  it('reads PNGs with labels from their names and class-K folders, and refuses a grid', async () => {
    const pngs = path.join(dir, 'pngs');
    writePng(path.join(pngs, '3-0001.png'), 28, 28, (x, y) => (Math.abs(x - 14) < 3 && y > 4 && y < 24 ? 1 : 0));
    writePng(path.join(pngs, 'class-7', '00001.png'), 28, 28, (x) => (x === 10 ? 1 : 0));
    writePng(path.join(pngs, 'plain.png'), 28, 28, () => 0.5);
    const source = await openSource(pngs);
    expect(source.available).toBe(3);
    // A stand-in evaluator that keeps what it is given: the images and labels as read.
    let given: SampleSet | undefined;
    const recorder = { config: evaluator.config, score: async (samples: SampleSet) => ((given = samples), {}) } as unknown as Evaluator;
    await source.score(recorder, 1000, 1, {});
    expect(given!.count).toBe(3);
    // Name order: 3-0001.png, class-7/, plain.png.
    expect([...given!.labels!]).toEqual([3, 7, -1]);
    expect(given!.images[784 + 10]).toBe(1);
    expect(given!.images[2 * 784 + 100]).toBeCloseTo(128 / 255, 6);
    // Three images are too few for a report.
    await expect(source.score(evaluator, 3, 1, {})).rejects.toMatchObject({ field: 'count' });

    const grid = path.join(dir, 'grid');
    writePng(path.join(grid, 'samples.png'), 59, 59, () => 0);
    await expect(openSource(grid)).rejects.toMatchObject({ code: ErrorCode.TensorMismatch, message: expect.stringMatching(/59x59, not 28x28.*--grid/) });
  });

  it('cuts a sample grid into its cells with --grid, skipping the empty white slots, and cycles labels when asked', async () => {
    // sampleGridPng's layout: 3 samples on a 2x2 grid, 1-pixel white gutters, the fourth slot empty (white).
    const images = new Float32Array(3 * 784);
    for (let n = 0; n < 3; n++) images.fill((n + 1) / 4, n * 784, (n + 1) * 784);
    const file = path.join(dir, 'samples.png');
    fs.writeFileSync(file, sampleGridPng(images, 3, [28, 28, 1], { columns: 2 }));
    await expect(openSource(file)).rejects.toThrow(/--grid/);
    const source = await openSource(file, { grid: true, cycleLabels: true, size: 28 });
    expect(source.available).toBe(3);
    let given: SampleSet | undefined;
    const recorder = { config: evaluator.config, score: async (samples: SampleSet) => ((given = samples), {}) } as unknown as Evaluator;
    await source.score(recorder, 1000, 1, {});
    expect([...given!.labels!]).toEqual([0, 1, 2]);
    for (let n = 0; n < 3; n++) expect(given!.images[n * 784 + 400]).toBeCloseTo(Math.round(((n + 1) / 4) * 255) / 255, 6);
    writePng(path.join(dir, 'odd.png'), 40, 40, () => 0);
    await expect(openSource(path.join(dir, 'odd.png'), { grid: true, size: 28 })).rejects.toThrow(/not a grid of 28x28 cells/);
  });

  it('refuses a path that is none of these, naming it', async () => {
    await expect(openSource(path.join(dir, 'absent'))).rejects.toMatchObject({ code: ErrorCode.InvalidConfig, field: 'PATH' });
    fs.mkdirSync(path.join(dir, 'empty'));
    await expect(openSource(path.join(dir, 'empty'))).rejects.toThrow(/no checkpoint.msgpack, no model.json and no PNG/);
  });
});
