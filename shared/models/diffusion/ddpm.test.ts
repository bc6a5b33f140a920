import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMnist } from '../../data/mnist.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { registerWasmConvKernels } from '../../tfjs/wasm-conv-kernels.ts';
import { adamStep, createAdamState } from '../../training/adam.ts';
import type { ModelSpec } from '../types.ts';
import { cddpm, ddpm, DdpmTrainer } from './ddpm.ts';
import { concatNoise } from '../../training/noise.ts';
import { relativeError, shardedAndUnionGradients } from '../trainer-contract.ts';

/** A narrow net and few sampling steps keep the tests quick; the architecture is the default one. */
const SMALL = { baseChannels: 8, timeEmbeddingDim: 16, samplingSteps: 3 };

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
});

describe.each([
  { spec: ddpm as ModelSpec<any>, conditional: false },
  { spec: cddpm as ModelSpec<any>, conditional: true },
])('$spec.id on wasm', ({ spec, conditional }) => {
  // Label dropout 0.5 so the equivalence test covers both kinds of row.
  const config = spec.parseConfig(conditional ? { ...SMALL, labelDropout: 0.5 } : SMALL);
  let trainer: DdpmTrainer;

  beforeAll(() => {
    trainer = spec.createTrainer(config) as DdpmTrainer;
    trainer.setWeights(trainer.initialWeights(42));
  });
  afterAll(() => trainer.dispose());

  it('the sample-weighted mean of 3 workers on disjoint shards equals the union batch', async () => {
    const { batches, noises, perWorker, union, averaged } = await shardedAndUnionGradients(trainer);
    if (conditional) expect(new Set(concatNoise(noises).dropLabel)).toEqual(new Set([0, 1]));
    const names = Object.keys(trainer.shapes);
    expect(Object.keys(averaged).sort()).toEqual(names.slice().sort());
    for (const name of names) {
      expect(relativeError(averaged[name], union.grads[name]), name).toBeLessThan(1e-5);
    }
    const total = batches.reduce((sum, batch) => sum + batch.count, 0);
    const mse = perWorker.reduce((sum, result, worker) => sum + result.losses.mse * batches[worker].count, 0) / total;
    // Relative: the loss of an untrained net is ~1.5, and a float32 mean over 12544 squares is good to ~1e-6 of it.
    expect(Math.abs(mse - union.losses.mse) / union.losses.mse).toBeLessThan(1e-5);
  });

  it('every tensor gets a finite, non-zero gradient, and neither lossAndGrads nor sample leaks a tensor', async () => {
    const batch = loadMnist().batch([1, 2, 3, 4]);
    const before = tf.memory().numTensors;
    const { grads, losses } = await trainer.lossAndGrads(batch, trainer.drawNoise(4, 7));
    expect(tf.memory().numTensors).toBe(before);
    await trainer.sample(2, 3);
    expect(tf.memory().numTensors).toBe(before);
    expect(Number.isFinite(losses.mse)).toBe(true);
    expect(Object.keys(losses)).toEqual([...spec.lossNames]);
    for (const [name, values] of Object.entries(grads)) {
      expect(values.length, name).toBe(trainer.shapes[name].reduce((a, b) => a * b, 1));
      expect(values.every(Number.isFinite), name).toBe(true);
      expect(
        values.some((value) => value !== 0),
        name,
      ).toBe(true);
    }
    expect(Object.keys(grads).some((name) => name.startsWith('label_'))).toBe(conditional);
    expect(new Set(Object.keys(trainer.shapes).map((name) => spec.networkOf(name)))).toEqual(new Set(['denoiser']));
  });

  it('sample returns finite pixels in [0, 1] of the right size, with the labels asked for (or cycled, or -1)', async () => {
    const asked = Int32Array.from([7, 0, 3]);
    const { images, labels } = await trainer.sample(3, 11, asked);
    expect(images).toHaveLength(3 * 28 * 28);
    expect(images.every((value) => Number.isFinite(value) && value >= 0 && value <= 1)).toBe(true);
    expect(Array.from(labels)).toEqual(conditional ? [7, 0, 3] : [-1, -1, -1]);
    const cycled = await trainer.sample(12, 11);
    expect(Array.from(cycled.labels)).toEqual(conditional ? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1] : new Array(12).fill(-1));
    // DDIM is deterministic given the seed.
    expect((await trainer.sample(3, 11, asked)).images).toEqual(images);
  });

  it('lets timers run while it samples: the event loop is not held for the whole sampling', async () => {
    let timerFiredAt: 'during' | 'after' | undefined;
    let sampling = true;
    setTimeout(() => (timerFiredAt = sampling ? 'during' : 'after'), 0);
    await trainer.sample(2, 5);
    sampling = false;
    expect(timerFiredAt).toBe('during');
  });

  it('samples with the ancestral sampler too', async () => {
    // The shortest schedule the config allows keeps T network calls cheap.
    const ancestral = spec.createTrainer(spec.parseConfig({ ...SMALL, sampler: 'ddpm', timesteps: 20 })) as DdpmTrainer;
    try {
      const before = tf.memory().numTensors;
      const { images } = await ancestral.sample(2, 5, conditional ? Int32Array.from([1, 2]) : undefined);
      expect(tf.memory().numTensors).toBe(before);
      expect(images.every((value) => Number.isFinite(value) && value >= 0 && value <= 1)).toBe(true);
    } finally {
      ancestral.dispose();
    }
  });

  it('the loss falls over 30 Adam steps on a fixed batch', async () => {
    const model = spec.createTrainer(config) as DdpmTrainer;
    try {
      const weights = model.initialWeights(1);
      const state = createAdamState(weights);
      const batch = loadMnist().batch([5, 1005, 2005, 3005, 4005, 5005, 6005, 7005]);
      const noise = model.drawNoise(batch.count, 9);
      const losses: number[] = [];
      for (let step = 0; step < 30; step++) {
        model.setWeights(weights);
        const {
          grads,
          losses: { mse },
        } = await model.lossAndGrads(batch, noise);
        losses.push(mse);
        // A larger rate than the default so 30 steps move a small net a long way.
        adamStep(weights, grads, state, { ...spec.networks.denoiser, learningRate: 2e-3 });
      }
      const first = (losses[0] + losses[1] + losses[2]) / 3;
      const last = (losses[27] + losses[28] + losses[29]) / 3;
      expect(last, losses.map((loss) => loss.toFixed(3)).join(' ')).toBeLessThan(0.5 * first);
    } finally {
      model.dispose();
    }
  });
});

describe('classifier-free guidance', () => {
  it('ignores the labels at scale 0 (unconditional ε only) and follows them at 1 and 3', async () => {
    const sampleWith = async (guidanceScale: number, labels: number[]) => {
      const trainer = cddpm.createTrainer(cddpm.parseConfig({ ...SMALL, guidanceScale })) as DdpmTrainer;
      try {
        return (await trainer.sample(2, 4, Int32Array.from(labels))).images;
      } finally {
        trainer.dispose();
      }
    };
    expect(await sampleWith(0, [1, 2])).toEqual(await sampleWith(0, [5, 6]));
    for (const scale of [1, 3]) expect(await sampleWith(scale, [1, 2])).not.toEqual(await sampleWith(scale, [5, 6]));
    expect(await sampleWith(3, [1, 2])).not.toEqual(await sampleWith(1, [1, 2]));
  });
});

describe('drawNoise', () => {
  let trainer: DdpmTrainer;
  beforeAll(() => {
    trainer = cddpm.createTrainer(cddpm.parseConfig({ ...SMALL, labelDropout: 0.2 })) as DdpmTrainer;
  });
  afterAll(() => trainer.dispose());

  it('draws integer timesteps uniform over [0, T), gaussian noise and label drops at the configured rate, the same for the same seed', () => {
    const count = 20_000;
    const { timesteps, noise, dropLabel } = trainer.drawNoise(count, 3);
    expect(noise).toHaveLength(count * 784);
    expect(timesteps.every((t) => Number.isInteger(t) && t >= 0 && t < 1000)).toBe(true);
    // Each quarter of [0, T) holds a quarter of the draws, within 4 standard deviations.
    for (let quarter = 0; quarter < 4; quarter++) {
      const inside = timesteps.filter((t) => t >= quarter * 250 && t < (quarter + 1) * 250).length;
      expect(Math.abs(inside / count - 0.25)).toBeLessThan(4 * Math.sqrt((0.25 * 0.75) / count));
    }
    const dropped = dropLabel.reduce((sum, value) => sum + value, 0) / count;
    expect(Math.abs(dropped - 0.2)).toBeLessThan(4 * Math.sqrt((0.2 * 0.8) / count));
    expect(trainer.drawNoise(5, 3).timesteps).toEqual(timesteps.slice(0, 5));
    expect(trainer.drawNoise(5, 4).timesteps).not.toEqual(timesteps.slice(0, 5));
  });
});

describe('configs', () => {
  it('fills defaults and rejects unknown keys, bad multipliers and odd embedding sizes, naming the field', () => {
    expect(ddpm.defaults).toMatchObject({
      timesteps: 1000,
      schedule: 'cosine',
      baseChannels: 32,
      channelMultipliers: [1, 2, 2],
      sampler: 'ddim',
      samplingSteps: 50,
    });
    expect(cddpm.defaults).toMatchObject({ labelDropout: 0.1, guidanceScale: 3 });
    expect(ddpm.classes).toBe(0);
    expect(cddpm.classes).toBe(10);
    const rejects = (spec: ModelSpec<any>, raw: unknown, field: string) =>
      expect(() => spec.parseConfig(raw)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidConfig, field }));
    // Guidance is the conditional model's: the unconditional one refuses it rather than ignoring it.
    rejects(ddpm, { guidanceScale: 2 }, 'model.config.guidanceScale');
    rejects(ddpm, { channelMultipliers: [1, 2] }, 'model.config.channelMultipliers');
    rejects(ddpm, { channelMultipliers: [1, 0, 2] }, 'model.config.channelMultipliers[1]');
    rejects(ddpm, { timeEmbeddingDim: 15 }, 'model.config.timeEmbeddingDim');
    rejects(cddpm, { sampler: 'euler' }, 'model.config.sampler');
    expect(cddpm.parseConfig({ channelMultipliers: [1, 1, 2] }).channelMultipliers).toEqual([1, 1, 2]);
  });
});
