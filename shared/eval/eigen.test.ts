import { describe, expect, it } from 'vitest';
import { gaussian } from '../training/random.ts';
import { multiply, sqrtPsd, symmetricEigen } from './eigen.ts';

/** B Bᵀ for a seeded n x rank B: symmetric PSD, singular when rank < n. */
function randomPsd(n: number, rank: number, seed: number): Float64Array {
  const b = gaussian(n * rank, seed);
  const matrix = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < rank; k++) matrix[i * n + j] += b[i * rank + k] * b[j * rank + k];
  return matrix;
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('symmetricEigen', () => {
  it('gives a diagonal matrix its diagonal and the identity', () => {
    const { values, vectors } = symmetricEigen([3, 0, 0, 0, -1, 0, 0, 0, 2], 3);
    expect([...values]).toEqual([3, -1, 2]);
    expect([...vectors]).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  });

  it('solves a 2x2 matrix in closed form', () => {
    // [[2, 1], [1, 2]] has eigenvalues 1 and 3 with eigenvectors (1, -1)/√2 and (1, 1)/√2.
    const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
    expect([...values].sort()).toEqual([expect.closeTo(1, 12), expect.closeTo(3, 12)]);
    const big = values[0] > values[1] ? 0 : 1;
    expect(Math.abs(vectors[big])).toBeCloseTo(Math.SQRT1_2, 12);
    expect(vectors[big] * vectors[2 + big]).toBeCloseTo(0.5, 12);
  });

  it.each([
    [8, 8],
    [40, 40],
    [64, 20],
  ])('decomposes a random %i x %i PSD matrix of rank %i: A V = V diag(values), V orthonormal', (n, rank) => {
    const a = randomPsd(n, rank, n * 7 + rank);
    const { values, vectors } = symmetricEigen(a, n);
    const av = multiply(a, vectors, n);
    const scaled = vectors.map((value, index) => value * values[index % n]);
    const scale = Math.max(...values.map(Math.abs));
    expect(maxAbsDifference(av, scaled) / scale).toBeLessThan(1e-12);
    const transpose = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) transpose[j * n + i] = vectors[i * n + j];
    const identity = new Float64Array(n * n).map((_, index) => (index % (n + 1) === 0 ? 1 : 0));
    expect(maxAbsDifference(multiply(transpose, vectors, n), identity)).toBeLessThan(1e-12);
    // Rank-deficient: n - rank eigenvalues are zero up to rounding.
    expect([...values].filter((value) => Math.abs(value) < 1e-9 * scale)).toHaveLength(n - rank);
  });

  it('refuses a matrix of the wrong size', () => {
    expect(() => symmetricEigen([1, 2, 3], 2)).toThrow(/3 values for a 2x2/);
  });
});

describe('sqrtPsd', () => {
  it('squares back to the matrix, also when singular', () => {
    for (const [n, rank] of [
      [10, 10],
      [30, 12],
    ]) {
      const a = randomPsd(n, rank, n + rank);
      const root = sqrtPsd(a, n);
      const scale = Math.max(...a.map(Math.abs));
      expect(maxAbsDifference(multiply(root, root, n), a) / scale).toBeLessThan(1e-10);
    }
  });
});
