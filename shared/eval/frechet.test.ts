import { describe, expect, it } from 'vitest';
import { gaussian } from '../training/random.ts';
import { frechetDistance } from './frechet.ts';
import { gaussianStats, type GaussianStats } from './gaussian-stats.ts';

function stats(mean: number[], covariance: number[]): GaussianStats {
  return { dimension: mean.length, count: 0, mean: Float64Array.from(mean), covariance: Float64Array.from(covariance) };
}

/** `count` vectors drawn from N(mean, diag(scale²)). */
function draw(count: number, mean: number[], scale: number[], seed: number): Float32Array {
  const d = mean.length;
  const noise = gaussian(count * d, seed);
  return noise.map((value, index) => mean[index % d] + scale[index % d] * value);
}

describe('frechetDistance', () => {
  it('is zero between a Gaussian and itself', () => {
    const features = draw(500, [1, -2, 0.5, 3], [1, 2, 0.5, 0.1], 1);
    const a = gaussianStats(features, 500, 4);
    expect(frechetDistance(a, a)).toBeLessThan(1e-9);
  });

  it('of 1-D Gaussians is (m1 - m2)² + (σ1 - σ2)²', () => {
    expect(frechetDistance(stats([1], [4]), stats([3], [9]))).toBeCloseTo(4 + 1, 10);
  });

  it('of diagonal Gaussians sums the 1-D distances', () => {
    const distance = frechetDistance(stats([0, 0, 1], [1, 0, 0, 0, 4, 0, 0, 0, 9]), stats([1, 0, 1], [4, 0, 0, 0, 4, 0, 0, 0, 1]));
    expect(distance).toBeCloseTo(1 + 1 + 0 + 4, 10);
  });

  it('matches the closed form for non-commuting 2x2 covariances', () => {
    // For 2x2 PSD M = S1^½ S2 S1^½: tr √M = √(tr(S1 S2) + 2 √(det S1 det S2)).
    const s1 = [2, 0.8, 0.8, 1];
    const s2 = [1, -0.3, -0.3, 3];
    const traceProduct = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
    const determinants = (s1[0] * s1[3] - s1[1] * s1[2]) * (s2[0] * s2[3] - s2[1] * s2[2]);
    const expected = 0.5 ** 2 + 1 + 2 + 1 + 1 + 3 - 2 * Math.sqrt(traceProduct + 2 * Math.sqrt(determinants));
    expect(frechetDistance(stats([0.5, 1], s1), stats([0, 0], s2))).toBeCloseTo(expected, 10);
  });

  it('is symmetric and handles singular covariances (fewer samples than dimensions)', () => {
    const a = gaussianStats(draw(6, new Array(16).fill(0), new Array(16).fill(1), 2), 6, 16);
    const b = gaussianStats(draw(6, new Array(16).fill(0.3), new Array(16).fill(1), 3), 6, 16);
    const ab = frechetDistance(a, b);
    expect(Number.isFinite(ab)).toBe(true);
    expect(ab).toBeCloseTo(frechetDistance(b, a), 6);
  });

  it('of two large samples of one Gaussian is small, and grows with the shift between them', () => {
    const d = 8;
    const scale = new Array(d).fill(1);
    const reference = gaussianStats(draw(20_000, new Array(d).fill(0), scale, 4), 20_000, d);
    const same = gaussianStats(draw(20_000, new Array(d).fill(0), scale, 5), 20_000, d);
    const shifted = gaussianStats(draw(20_000, new Array(d).fill(0.5), scale, 6), 20_000, d);
    expect(frechetDistance(reference, same)).toBeLessThan(0.01);
    // The shift alone contributes d * 0.5² = 2.
    expect(frechetDistance(reference, shifted)).toBeCloseTo(2, 1);
  });
});

describe('gaussianStats', () => {
  it('estimates mean and covariance with the n - 1 normalisation', () => {
    const { mean, covariance } = gaussianStats([1, 2, 3, 4, 5, 9], 3, 2);
    expect([...mean]).toEqual([3, 5]);
    // x: 1, 3, 5 (var 4); y: 2, 4, 9 (var 13); cov((−2, 0, 2), (−3, −1, 4)) = (6 + 0 + 8) / 2 = 7.
    expect([...covariance]).toEqual([4, 7, 7, 13]);
  });

  it('refuses a set too small for a covariance', () => {
    expect(() => gaussianStats([1, 2], 1, 2)).toThrow(/at least 2/);
  });
});
