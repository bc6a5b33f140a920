import { multiply, sqrtPsd, symmetricEigen } from './eigen.ts';
import type { GaussianStats } from './gaussian-stats.ts';

/**
 * Fréchet distance between two Gaussians fitted to feature sets (the FID
 * formula, on whatever features are given):
 *   |m1 - m2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1^1/2 S2 S1^1/2).
 * The last trace equals tr sqrt(S1 S2) but its argument is symmetric PSD, so
 * a symmetric eigendecomposition gives it exactly, with no complex parts to
 * discard as scipy's sqrtm must.
 */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  if (a.dimension !== b.dimension) throw new RangeError(`frechetDistance: dimensions ${a.dimension} and ${b.dimension}`);
  const n = a.dimension;
  let meanTerm = 0;
  for (let i = 0; i < n; i++) meanTerm += (a.mean[i] - b.mean[i]) ** 2;
  let traces = 0;
  for (let i = 0; i < n; i++) traces += a.covariance[i * n + i] + b.covariance[i * n + i];
  const rootA = sqrtPsd(a.covariance, n);
  const product = multiply(multiply(rootA, b.covariance, n), rootA, n);
  const { values } = symmetricEigen(product, n);
  let traceRoot = 0;
  for (const value of values) traceRoot += Math.sqrt(Math.max(0, value));
  // Never below zero: rounding can take two identical sets a hair under it.
  return Math.max(0, meanTerm + traces - 2 * traceRoot);
}
