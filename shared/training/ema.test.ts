import { describe, expect, it } from 'vitest';
import { emaDecayAt, updateEma } from './ema.ts';

describe('emaDecayAt', () => {
  it('warms up from 0.2 and settles on the model decay', () => {
    expect(emaDecayAt(1, 0.999)).toBeCloseTo(2 / 11, 12);
    expect(emaDecayAt(90, 0.999)).toBeCloseTo(91 / 100, 12);
    // (1 + s) / (10 + s) reaches 0.999 at s = 8990.
    expect(emaDecayAt(8989, 0.999)).toBeLessThan(0.999);
    expect(emaDecayAt(20000, 0.999)).toBe(0.999);
    expect(emaDecayAt(100, 0.9)).toBe(0.9);
  });
});

describe('updateEma', () => {
  it('starts as a copy of the weights, not a view of them', () => {
    const weights = { a: Float32Array.from([1, 2]) };
    const average = updateEma(undefined, weights, 0.5);
    weights.a[0] = 9;
    expect([...average.a]).toEqual([1, 2]);
  });

  it('folds new weights in by 1 - decay, in place', () => {
    const average = { a: Float32Array.from([0, 4]) };
    const result = updateEma(average, { a: Float32Array.from([10, 0]) }, 0.75);
    expect(result).toBe(average);
    expect([...average.a]).toEqual([2.5, 3]);
  });

  it('keeps a trace of the start after n steps of a constant: decay^n of the gap is left', () => {
    let average = updateEma(undefined, { a: Float32Array.from([0]) }, 0.9);
    for (let i = 0; i < 20; i++) average = updateEma(average, { a: Float32Array.from([1]) }, 0.9);
    expect(average.a[0]).toBeCloseTo(1 - 0.9 ** 20, 5);
  });
});
