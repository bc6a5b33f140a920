import { describe, expect, it } from 'vitest';
import { gaussian } from '../training/random.ts';
import { kthNeighbourDistances, manifoldPrecisionRecall } from './manifold.ts';

describe('manifoldPrecisionRecall', () => {
  const d = 4;
  const real = gaussian(200 * d, 1);

  it('is 1 and 1 for a set against itself', () => {
    expect(manifoldPrecisionRecall(real, 200, real, 200, d)).toEqual({ precision: 1, recall: 1 });
  });

  it('is high for a second draw of the same distribution', () => {
    const { precision, recall } = manifoldPrecisionRecall(real, 200, gaussian(200 * d, 2), 200, d);
    expect(precision).toBeGreaterThan(0.8);
    expect(recall).toBeGreaterThan(0.8);
  });

  it('is 0 and 0 for a set far away', () => {
    const far = gaussian(200 * d, 3).map((value) => value + 100);
    expect(manifoldPrecisionRecall(real, 200, far, 200, d)).toEqual({ precision: 0, recall: 0 });
  });

  it('keeps precision but loses recall when the generated set collapses to a few real-looking points', () => {
    // Every generated vector is one of three real ones: all inside the real manifold, covering little of it.
    const collapsed = new Float32Array(200 * d);
    for (let n = 0; n < 200; n++) collapsed.set(real.subarray((n % 3) * d, ((n % 3) + 1) * d), n * d);
    const { precision, recall } = manifoldPrecisionRecall(real, 200, collapsed, 200, d);
    expect(precision).toBe(1);
    expect(recall).toBeLessThan(0.1);
  });

  it('refuses sets no larger than k', () => {
    expect(() => manifoldPrecisionRecall(real, 3, real, 3, d)).toThrow(/more than 3/);
  });
});

describe('kthNeighbourDistances', () => {
  it('gives each point its k-th nearest other point, squared', () => {
    // Points on a line at 0, 1, 3, 6: their second-nearest others are 3, 3, 0 (or 6) and 1, at distances 3, 2, 3, 5.
    expect([...kthNeighbourDistances([0, 1, 3, 6], 4, 1, 2)]).toEqual([9, 4, 9, 25]);
  });
});
