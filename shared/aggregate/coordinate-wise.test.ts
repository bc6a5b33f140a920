import { describe, expect, it } from 'vitest';
import { reduceCoordinates, sortedWeightedMedian } from './coordinate-wise.ts';

const median = (values: number[], shares: number[]) => sortedWeightedMedian(Float64Array.from(values), Float64Array.from(shares), values.length);

describe('sortedWeightedMedian', () => {
  it('is the middle value, or the midpoint of the two middle ones for equal halves', () => {
    expect(median([1, 2, 3], [1, 1, 1])).toBe(2);
    expect(median([1, 2, 3, 10], [1, 1, 1, 1])).toBe(2.5);
    expect(median([7], [1])).toBe(7);
  });

  it('follows the weights', () => {
    expect(median([0, 1, 2], [1, 1, 3])).toBe(2);
    expect(median([0, 1, 2], [3, 1, 1])).toBe(0);
    // Weight 2 on the first of three is half: the midpoint with the next, as [0, 0, 1, 2] would give.
    expect(median([0, 1, 2], [2, 1, 1])).toBe(0.5);
    // Sixths that do not add up to exactly one half still count as half.
    expect(median([0, 1, 2, 3], [1 / 6, 1 / 6, 1 / 6, 1 / 2])).toBe(2.5);
  });

  it('skips values of zero share when taking the midpoint', () => {
    expect(median([0, 5, 10], [1, 0, 1])).toBe(5);
    expect(median([0, 1, 10], [1, 0, 1])).toBe(5);
  });
});

describe('reduceCoordinates', () => {
  it('hands the reducer each coordinate sorted, with its shares and scales applied', () => {
    const updates = [
      { weight: 1, tensors: { a: Float32Array.of(3, -1), b: Float32Array.of(0) } },
      { weight: 1, tensors: { a: Float32Array.of(1, 5), b: Float32Array.of(2) } },
      { weight: 1, tensors: { a: Float32Array.of(2, 0), b: Float32Array.of(1) } },
    ];
    const seen: string[] = [];
    const result = reduceCoordinates(updates, [1, 10, 1], [0.5, 0.3, 0.2], (values, shares, count) => {
      seen.push(`${Array.from(values.subarray(0, count))}|${Array.from(shares.subarray(0, count))}`);
      return values[count - 1];
    });
    expect(seen).toEqual(['2,3,10|0.2,0.5,0.3', '-1,0,50|0.5,0.2,0.3', '0,1,20|0.5,0.2,0.3']);
    expect(Array.from(result.a)).toEqual([10, 50]);
    expect(Array.from(result.b)).toEqual([20]);
    expect(result.a).toBeInstanceOf(Float64Array);
  });
});
