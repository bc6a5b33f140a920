import { describe, expect, it } from 'vitest';
import { CLIP_MULTIPLE, clipByNorm, clipRadii, deviationOf, weightedLowerMedian } from './clip.ts';

describe('weightedLowerMedian', () => {
  it('is the smallest value whose cumulative share reaches half', () => {
    expect(weightedLowerMedian([3, 1, 2], [1, 1, 1])).toBe(2);
    expect(weightedLowerMedian([1, 100], [1, 1])).toBe(1);
    expect(weightedLowerMedian([1, 100], [1, 3])).toBe(100);
    expect(weightedLowerMedian([5, 1, 9, 7], [1, 1, 1, 3])).toBe(7);
    // 1/6 + 1/6 + 1/6 is not exactly 1/2 in floating point; it still reaches half.
    expect(weightedLowerMedian([1, 2, 3, 4], [1 / 6, 1 / 6, 1 / 6, 1 / 2])).toBe(3);
  });
});

describe('clipRadii', () => {
  it('is clipNorm for every update when set', () => {
    expect(clipRadii([1, 2, 300], Float64Array.of(0.2, 0.3, 0.5), 7)).toEqual([7, 7, 7]);
  });

  it('is CLIP_MULTIPLE x the median length for equal shares, whatever the largest', () => {
    expect(
      clipRadii(
        [1, 2, 3e9],
        Float64Array.of(1, 1, 1).map((v) => v / 3),
        0,
      ).map((r) => +r.toPrecision(12)),
    ).toEqual([2, 2, 2].map((v) => CLIP_MULTIPLE * v));
  });

  it('grows as sqrt(1/share) down to 1/16 of an equal share, and leaves out lengths of 0', () => {
    const shares = Float64Array.of(0.64, 0.16, 0.16, 0.04);
    const radii = clipRadii([1, 2, 2, 4], shares, 0);
    // length x sqrt(share) is 0.8 for each: the same noise per sample.
    expect(radii.map((r) => +(r / CLIP_MULTIPLE).toPrecision(12))).toEqual([1, 2, 2, 4]);
    const tiny = clipRadii([1, 1, 1, 100], Float64Array.of(0.33, 0.33, 0.33, 0.01), 0);
    // The fourth's share 0.01 is floored at 1/(16 x 4): its radius is sqrt(0.33 x 64) ~ 4.6x the others', not 5.7x.
    expect(tiny[3] / tiny[0]).toBeCloseTo(Math.sqrt(0.33 * 64), 9);
    expect(clipRadii([0, 3, 3], Float64Array.of(0.6, 0.2, 0.2), 0)[1]).toBeCloseTo(CLIP_MULTIPLE * 3, 9);
    expect(clipRadii([0, 0], Float64Array.of(0.5, 0.5), 0)).toEqual([0, 0]);
  });

  it('gives one radius for all with byShare false', () => {
    expect(clipRadii([1, 2, 4], Float64Array.of(0.2, 0.2, 0.6), 0, false)).toEqual([16, 16, 16]);
  });
});

describe('clipByNorm', () => {
  it('scales only the updates above their radius, and says which', () => {
    const updates = [1, 1, 100].map((norm) => ({ weight: 1, tensors: { w: Float32Array.of(norm, 0) } }));
    const clip = clipByNorm(updates, { maxShare: 1, clipNorm: 0, trimFraction: 0, iterations: 0 });
    expect(Array.from(clip.scales)).toEqual([1, 1, expect.closeTo(CLIP_MULTIPLE / 100, 12)]);
    expect(clip.clipped).toEqual([false, false, true]);
  });
});

describe('deviationOf', () => {
  it('is distance over radius, 0 at the centre, finite beyond', () => {
    expect(deviationOf(3, 2)).toBe(1.5);
    expect(deviationOf(0, 0)).toBe(0);
    expect(deviationOf(1, 0)).toBe(1e6);
  });
});
