import { describe, expect, it } from 'vitest';
import { labelOneHot, noisedImages, timestepEmbedding } from './inputs.ts';
import { makeSchedule } from './schedule.ts';

describe('timestepEmbedding', () => {
  it('holds sin(t f_i) then cos(t f_i), f_i = 10000^(-i/half), one row per timestep', () => {
    const embedding = timestepEmbedding([0, 7], 4);
    expect(Array.from(embedding.subarray(0, 4))).toEqual([0, 0, 1, 1]);
    const expected = [Math.sin(7), Math.sin(7 / 100), Math.cos(7), Math.cos(7 / 100)];
    expected.forEach((value, i) => expect(embedding[4 + i]).toBeCloseTo(value, 6));
  });
});

describe('noisedImages', () => {
  it('is sqrt(ᾱ_t)(2p - 1) + sqrt(1 - ᾱ_t) ε with each example at its own step', () => {
    const schedule = makeSchedule('cosine', 100);
    const pixels = Float32Array.from([0, 1, 0.25, 0.5]);
    const noise = Float32Array.from([1, -1, 2, 0.5]);
    const result = noisedImages(pixels, [0, 99], noise, schedule);
    const at = (t: number, p: number, e: number) => Math.sqrt(schedule.alphaBars[t]) * (2 * p - 1) + Math.sqrt(1 - schedule.alphaBars[t]) * e;
    const expected = [at(0, 0, 1), at(0, 1, -1), at(99, 0.25, 2), at(99, 0.5, 0.5)];
    expected.forEach((value, i) => expect(result[i]).toBeCloseTo(value, 6));
  });
});

describe('labelOneHot', () => {
  it('puts dropped or negative labels in the extra "no label" class and refuses labels out of range', () => {
    const rows = labelOneHot([2, 0, -1], 3, [0, 1, 0]);
    expect(Array.from(rows)).toEqual([0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(() => labelOneHot([3], 3)).toThrow(/label 3/);
  });
});
