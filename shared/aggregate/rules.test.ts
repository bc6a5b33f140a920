/** What each rule does beyond the contract: the mean averages, the trimmed mean trims, the median is the median, centered-clip converges. */
import { describe, expect, it } from 'vitest';
import { centeredClip } from './centered-clip.ts';
import { mean } from './mean.ts';
import { median } from './median.ts';
import { globalNorm } from './norms.ts';
import { OPTIONS, honestUpdates, maxAbs, maxDifference, scaled } from './test-utils.ts';
import { trimmedMean, trimmedMeanOf } from './trimmed-mean.ts';
import type { WeightedUpdate } from './types.ts';
import { weightedMean } from './weighted-mean.ts';

/** Scalars as one-element updates, so a rule's per-coordinate arithmetic shows directly. */
function scalars(values: number[], weights = values.map(() => 1)): WeightedUpdate[] {
  return values.map((value, k) => ({ weight: weights[k], tensors: { w: Float32Array.of(value) } }));
}

/** No clipping: a radius larger than any value here. */
const UNCLIPPED = { ...OPTIONS, clipNorm: 1e9 };

describe('mean', () => {
  it('is the weighted mean when nobody is clipped', () => {
    const updates = honestUpdates([16, 8, 32], 1);
    expect(maxDifference(mean.aggregate(updates, OPTIONS).tensors, weightedMean(updates))).toBeLessThanOrEqual(1e-6 * maxAbs(weightedMean(updates)));
  });

  it('clips an update to clipNorm, keeping its direction', () => {
    const result = mean.aggregate(scalars([1, 10], [1, 1]), { ...OPTIONS, clipNorm: 2 });
    expect(Array.from(result.tensors.w)).toEqual([1.5]);
    expect(result.outliers).toEqual([false, true]);
  });

  it('caps the share of a heavy update at maxShare with three or more updates', () => {
    expect(Array.from(mean.aggregate(scalars([0, 0, 12], [1, 1, 10]), { ...UNCLIPPED, maxShare: 0.5 }).tensors.w)).toEqual([6]);
    expect(Array.from(mean.aggregate(scalars([0, 12], [2, 10]), { ...UNCLIPPED, maxShare: 0.5 }).tensors.w)).toEqual([10]);
  });
});

describe('trimmed-mean', () => {
  it('drops the extremes at each end by weight', () => {
    expect(Array.from(trimmedMean.aggregate(scalars([1, 2, 3, 4, 100]), { ...UNCLIPPED, trimFraction: 0.2 }).tensors.w)).toEqual([3]);
    // Total weight 4, 1 trimmed at each end: half of the 10 and half of the 20 stay.
    expect(Array.from(trimmedMean.aggregate(scalars([0, 10, 20], [1, 1, 2]), { ...UNCLIPPED, trimFraction: 0.25 }).tensors.w)).toEqual([15]);
  });

  it('is the weighted mean with nothing trimmed, and tends to the median as the fraction nears one half', () => {
    const values = [0, 1, 2, 3, 50];
    const at = (fraction: number) => trimmedMeanOf(fraction)(Float64Array.from(values), Float64Array.from([0.2, 0.2, 0.2, 0.2, 0.2]), 5);
    expect(at(0)).toBeCloseTo(56 / 5, 12);
    expect(at(0.49)).toBeCloseTo(2, 12);
  });

  it('trims per coordinate: each coordinate drops its own extremes', () => {
    const updates = [
      { weight: 1, tensors: { w: Float32Array.of(100, 1) } },
      { weight: 1, tensors: { w: Float32Array.of(2, 2) } },
      { weight: 1, tensors: { w: Float32Array.of(3, -100) } },
      { weight: 1, tensors: { w: Float32Array.of(4, 4) } },
    ];
    expect(Array.from(trimmedMean.aggregate(updates, { ...UNCLIPPED, trimFraction: 0.25 }).tensors.w)).toEqual([3.5, 1.5]);
  });

  it('refuses a fraction outside [0, 0.49]', () => {
    expect(() => trimmedMean.aggregate(scalars([1, 2]), { ...OPTIONS, trimFraction: 0.5 })).toThrow(/trimFraction/);
    expect(() => trimmedMean.aggregate(scalars([1, 2]), { ...OPTIONS, trimFraction: -0.1 })).toThrow(/trimFraction/);
  });
});

describe('median', () => {
  it('is the coordinate-wise median', () => {
    const updates = [
      { weight: 1, tensors: { w: Float32Array.of(1, 30, -5) } },
      { weight: 1, tensors: { w: Float32Array.of(2, 10, -6) } },
      { weight: 1, tensors: { w: Float32Array.of(3, 20, 1e6) } },
    ];
    expect(Array.from(median.aggregate(updates, UNCLIPPED).tensors.w)).toEqual([2, 20, -5]);
  });

  it('is weighted, and the midpoint for two equal halves', () => {
    expect(Array.from(median.aggregate(scalars([0, 1, 2], [1, 1, 3]), UNCLIPPED).tensors.w)).toEqual([2]);
    expect(Array.from(median.aggregate(scalars([0, 4], [1, 1]), UNCLIPPED).tensors.w)).toEqual([2]);
  });
});

describe('centered-clip', () => {
  it('converges to the weighted mean when nobody is beyond the radius', () => {
    const updates = honestUpdates([16, 8, 32, 12], 2);
    const result = centeredClip.aggregate(updates, { ...OPTIONS, clipNorm: 1e6, iterations: 3 });
    const expected = weightedMean(updates);
    expect(maxDifference(result.tensors, expected)).toBeLessThanOrEqual(1e-6 * maxAbs(expected));
    expect(result.outliers).toEqual([false, false, false, false]);
  });

  it('with no iterations is its start, the weighted median', () => {
    const updates = scalars([0, 1, 5], [1, 1, 1]);
    expect(Array.from(centeredClip.aggregate(updates, { ...OPTIONS, iterations: 0 }).tensors.w)).toEqual([1]);
  });

  it('iterates from the median: each step moves by the clipped deviations', () => {
    // Start 1; radius 1 (set). Deviations -1, 0, 9 -> clipped -1, 0, 1; step (1/3)(-1 + 0 + 1) = 0: stays at 1.
    expect(Array.from(centeredClip.aggregate(scalars([0, 1, 10]), { ...OPTIONS, clipNorm: 1, iterations: 5 }).tensors.w)).toEqual([1]);
    // Start 1; deviations -1, 0, 2 clipped to radius 1.5: -1, 0, 1.5 -> step 1/6.
    const one = centeredClip.aggregate(scalars([0, 1, 3]), { ...OPTIONS, clipNorm: 1.5, iterations: 1 });
    expect(one.tensors.w[0]).toBeCloseTo(1 + 1 / 6, 6);
  });

  it('keeps a sign-flipped attacker from dragging the centre: it lands near the honest mean, unlike the mean', () => {
    const updates = honestUpdates([16, 16, 16, 16], 3, 0.3);
    const honestMean = weightedMean(updates.slice(1));
    updates[0] = { ...updates[0], tensors: scaled(updates[0].tensors, -10) };
    const distance = (tensors: Record<string, Float32Array>) =>
      globalNorm(Object.fromEntries(Object.entries(tensors).map(([name, values]) => [name, values.map((v, i) => v - honestMean[name][i])])));
    const clipped = distance(centeredClip.aggregate(updates, OPTIONS).tensors);
    const averaged = distance(mean.aggregate(updates, OPTIONS).tensors);
    expect(clipped).toBeLessThan(averaged / 3);
    expect(clipped).toBeLessThan(0.5 * globalNorm(honestMean));
  });
});
