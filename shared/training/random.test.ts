import { describe, expect, it } from 'vitest';
import { gaussian } from './random.ts';

describe('gaussian', () => {
  it('is the same draw for the same seed, odd counts included', () => {
    expect(gaussian(7, 3)).toEqual(gaussian(7, 3));
    expect(gaussian(7, 3)).not.toEqual(gaussian(7, 4));
    expect(gaussian(7, 3)).toEqual(gaussian(8, 3).subarray(0, 7));
  });

  it('with a bound, keeps only values within it and the plain draw’s values in order', () => {
    const plain = gaussian(20_000, 11);
    const truncated = gaussian(10_000, 11, 1);
    expect(truncated.every((value) => Math.abs(value) <= 1)).toBe(true);
    // The truncated draw is the plain stream with the far values left out.
    expect(truncated.subarray(0, 100)).toEqual(plain.filter((value) => Math.abs(value) <= 1).subarray(0, 100));
    // About 68% of a standard normal lies within ±1; the kept values' spread is that of the truncated normal (~0.54).
    const variance = truncated.reduce((sum, value) => sum + value * value, 0) / truncated.length;
    expect(variance).toBeGreaterThan(0.26);
    expect(variance).toBeLessThan(0.32);
    expect(gaussian(64, 11, Infinity)).toEqual(gaussian(64, 11));
  });

  it('refuses a bound that is not positive', () => {
    expect(() => gaussian(4, 1, 0)).toThrow(RangeError);
    expect(() => gaussian(4, 1, Number.NaN)).toThrow(RangeError);
  });
});
