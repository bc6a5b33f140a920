import { describe, expect, it } from 'vitest';
import { learningRateDecay, learningRateScale, LR_SCALING_RULES, scaledOptimizer } from './lr-scaling.ts';

const optimizer = { learningRate: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-8 };

describe('learningRateScale', () => {
  it('is 1 at the reference batch, whatever the rule', () => {
    for (const lrScaling of LR_SCALING_RULES) expect(learningRateScale(64, { lrScaling, referenceBatch: 64 })).toBe(1);
  });

  it('follows the batch as the rule says: none, square root, linear', () => {
    // An autoscaler taking 2 workers of 32 to 8: the global batch goes from 64 to 256.
    expect(learningRateScale(256, { lrScaling: 'none', referenceBatch: 64 })).toBe(1);
    expect(learningRateScale(256, { lrScaling: 'sqrt', referenceBatch: 64 })).toBe(2);
    expect(learningRateScale(256, { lrScaling: 'linear', referenceBatch: 64 })).toBe(4);
    // A round that lost a worker averages fewer samples and steps less far.
    expect(learningRateScale(16, { lrScaling: 'sqrt', referenceBatch: 64 })).toBe(0.5);
  });

  it('refuses a batch that is not positive', () => {
    expect(() => learningRateScale(0, { lrScaling: 'sqrt', referenceBatch: 64 })).toThrow(RangeError);
    expect(() => learningRateScale(32, { lrScaling: 'sqrt', referenceBatch: Number.NaN })).toThrow(RangeError);
  });
});

describe('scaledOptimizer', () => {
  it('scales the learning rate only, and leaves the config it was given alone', () => {
    const scaled = scaledOptimizer(optimizer, 128, { lrScaling: 'linear', referenceBatch: 64 });
    expect(scaled).toEqual({ ...optimizer, learningRate: 4e-4 });
    expect(optimizer.learningRate).toBe(2e-4);
    expect(scaledOptimizer(optimizer, 128, { lrScaling: 'none', referenceBatch: 64 })).toBe(optimizer);
  });
});

describe('learningRateDecay', () => {
  it('halves the rate every half-life of steps, and keeps it without one', () => {
    const config = { lrScaling: 'none' as const, referenceBatch: 64, lrHalfLife: 1000 };
    expect(learningRateDecay(0, config)).toBe(1);
    expect(learningRateDecay(1000, config)).toBeCloseTo(0.5, 12);
    expect(learningRateDecay(3000, config)).toBeCloseTo(0.125, 12);
    expect(learningRateDecay(5000, { ...config, lrHalfLife: 0 })).toBe(1);
    expect(learningRateDecay(5000, { lrScaling: 'none', referenceBatch: 64 })).toBe(1);
  });

  it('multiplies with the batch scaling in the optimizer a step uses', () => {
    const scaled = scaledOptimizer(optimizer, 256, { lrScaling: 'sqrt', referenceBatch: 64, lrHalfLife: 10 }, 10);
    // sqrt(256 / 64) x 2^-1: the two factors cancel.
    expect(scaled.learningRate).toBeCloseTo(optimizer.learningRate, 15);
    expect(scaledOptimizer(optimizer, 64, { lrScaling: 'none', referenceBatch: 64, lrHalfLife: 10 }, 0)).toBe(optimizer);
  });
});
