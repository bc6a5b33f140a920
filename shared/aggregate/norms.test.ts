import { describe, expect, it } from 'vitest';
import { findNonFinite, globalNorm, normOfSquares, squaredNorms } from './norms.ts';

describe('findNonFinite', () => {
  it('returns undefined when every value is finite (including ±0, extremes and subnormals)', () => {
    const values = new Float32Array([0, -0, 3.4e38, -3.4e38, 1e-45, -1e-45]);
    expect(findNonFinite({ a: values, b: new Float32Array(0) })).toBeUndefined();
    expect(findNonFinite({})).toBeUndefined();
  });

  for (const [label, bad] of [
    ['NaN', Number.NaN],
    ['+Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ] as const) {
    it(`finds ${label} at the first and the last index and names the tensor`, () => {
      const first = new Float32Array(5);
      first[0] = bad;
      expect(findNonFinite({ ok: new Float32Array(3), bad: first })).toEqual({ name: 'bad', index: 0 });
      const last = new Float32Array(5).fill(1);
      last[4] = bad;
      expect(findNonFinite({ ok: new Float32Array(3), bad: last })).toEqual({ name: 'bad', index: 4 });
    });
  }

  it('reports the first tensor in record order that has one', () => {
    const a = new Float32Array([1, Number.NaN]);
    const b = new Float32Array([Number.POSITIVE_INFINITY]);
    expect(findNonFinite({ a, b })).toEqual({ name: 'a', index: 1 });
    expect(findNonFinite({ b, a })).toEqual({ name: 'b', index: 0 });
  });
});

describe('globalNorm', () => {
  it('is the L2 norm of all tensors together', () => {
    expect(globalNorm({ a: new Float32Array([3]), b: new Float32Array([4]) })).toBe(5);
    expect(globalNorm({ a: new Float32Array([1, 2, 2]) })).toBe(3);
    expect(globalNorm({ a: new Float32Array([-1, -2, 2]) })).toBe(3);
  });

  it('is 0 for no tensors and for zeros', () => {
    expect(globalNorm({})).toBe(0);
    expect(globalNorm({ a: new Float32Array(4), b: new Float32Array(0) })).toBe(0);
  });

  it('sums in float64: no overflow where float32 squares would overflow', () => {
    expect(globalNorm({ a: new Float32Array([3e30, 4e30]) })).toBeCloseTo(5e30, -24);
  });

  it('is NaN or Infinity when a value is', () => {
    expect(globalNorm({ a: new Float32Array([1, Number.NaN]) })).toBeNaN();
    expect(globalNorm({ a: new Float32Array([Number.NEGATIVE_INFINITY]) })).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('squaredNorms and normOfSquares', () => {
  it("give each tensor's sum of squares and the norm of any of them, as globalNorm does", () => {
    const tensors = { a: new Float32Array([3]), b: new Float32Array([4, 0]), c: new Float32Array([1, 2, 2]) };
    const squares = squaredNorms(tensors);
    expect(squares).toEqual({ a: 9, b: 16, c: 9 });
    expect(normOfSquares(squares)).toBe(globalNorm(tensors));
    expect(normOfSquares(squares, ['a', 'b'])).toBe(globalNorm({ a: tensors.a, b: tensors.b }));
    expect(normOfSquares({})).toBe(0);
  });

  it('is finite exactly when every value is: the one pass the update checks rely on', () => {
    const extremes = new Float32Array(1 << 16).fill(3.4e38);
    expect(Number.isFinite(normOfSquares(squaredNorms({ a: extremes, b: new Float32Array([-3.4e38, 1e-45]) })))).toBe(true);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const values = new Float32Array(4).fill(1);
      values[3] = bad;
      expect(Number.isFinite(normOfSquares(squaredNorms({ ok: new Float32Array(2), bad: values })))).toBe(false);
    }
  });
});
