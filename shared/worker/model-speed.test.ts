import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { dcgan } from '../models/gan/dcgan.ts';
import { fitStepTime, measureStepTime, samplesPerSecondAt, stepMs } from './model-speed.ts';

describe('fitStepTime', () => {
  it('recovers a fixed cost and a cost per sample from exact points', () => {
    const time = fitStepTime([
      { samples: 1, ms: 12 },
      { samples: 8, ms: 40 },
      { samples: 16, ms: 72 },
    ]);
    expect(time.fixedMs).toBeCloseTo(8, 9);
    expect(time.perSampleMs).toBeCloseTo(4, 9);
    expect(stepMs(time, 32)).toBeCloseTo(136, 9);
    expect(samplesPerSecondAt(time, 32)).toBeCloseTo(32_000 / 136, 9);
  });

  it('keeps both parts non-negative when noise tilts the line', () => {
    // 10 ms for one sample and 24 for eight: 8 fixed and 2 per sample.
    expect(
      fitStepTime([
        { samples: 1, ms: 10 },
        { samples: 8, ms: 24 },
      ]),
    ).toEqual({ fixedMs: 8, perSampleMs: 2 });
    // One sample slower than eight (a pause caught): no slope to trust, the mean rate is used.
    expect(
      fitStepTime([
        { samples: 1, ms: 30 },
        { samples: 8, ms: 20 },
      ]),
    ).toEqual({ fixedMs: 0, perSampleMs: 25 / 4.5 });
    // A negative intercept: through the mean, nothing fixed.
    expect(
      fitStepTime([
        { samples: 1, ms: 1 },
        { samples: 8, ms: 36 },
      ]),
    ).toEqual({ fixedMs: 0, perSampleMs: 37 / 9 });
    expect(fitStepTime([{ samples: 4, ms: 20 }])).toEqual({ fixedMs: 0, perSampleMs: 5 });
    expect(() => fitStepTime([])).toThrow(/at least one/);
  });
});

describe('measureStepTime', () => {
  it('times real steps of a model on the current backend, leaving no tensors behind, and hands back gradients', async () => {
    await tf.setBackend('cpu');
    const trainer = dcgan.createTrainer(dcgan.parseConfig({ width: 2, latentDim: 4 }));
    const before = tf.memory().numTensors;
    const { time, grads } = await measureStepTime(trainer, dcgan, [1, 4]);
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
    expect(time.fixedMs).toBeGreaterThanOrEqual(0);
    expect(time.perSampleMs).toBeGreaterThan(0);
    expect(Object.keys(grads).sort()).toEqual(Object.keys(trainer.shapes).sort());
  });
});
