import { describe, expect, it } from 'vitest';
import type { NamedArrays } from '../codec/types.ts';
import { createRandom, shuffle } from '../training/random.ts';
import { weightedMean, type WeightedUpdate } from './weighted-mean.ts';

function randomArray(length: number, seed: number, scale = 1): Float32Array {
  const next = createRandom(seed);
  return Float32Array.from({ length }, () => ((next() / 2 ** 32) * 2 - 1) * scale);
}

/** Updates of varied size and magnitude, so rounding order would show if the sum ran in float32. */
function randomUpdates(count: number, seed: number): WeightedUpdate[] {
  const next = createRandom(seed);
  return Array.from({ length: count }, (_, k) => ({
    weight: 1 + (next() % 64),
    tensors: { g_w: randomArray(257, seed * 100 + k, 10 ** ((k % 5) - 2)), d_b: randomArray(3, seed * 100 + 50 + k, 1000) },
  }));
}

/** The weighted mean computed directly in float64: sum(w_k x_k) / sum(w_k). */
function reference(updates: readonly WeightedUpdate[]): Record<string, Float64Array> {
  const total = updates.reduce((sum, update) => sum + update.weight, 0);
  const result: Record<string, Float64Array> = {};
  for (const name of Object.keys(updates[0].tensors)) {
    const sum = new Float64Array(updates[0].tensors[name].length);
    for (const update of updates) update.tensors[name].forEach((value, i) => (sum[i] += update.weight * value));
    result[name] = sum.map((value) => value / total);
  }
  return result;
}

function maxRelativeDifference(a: Float32Array, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-30));
  return worst;
}

describe('weightedMean', () => {
  it('weights each update by its samples', () => {
    const mean = weightedMean([
      { weight: 1, tensors: { w: new Float32Array([0, 4]) } },
      { weight: 3, tensors: { w: new Float32Array([4, 8]) } },
    ]);
    expect(Array.from(mean.w)).toEqual([3, 7]);
  });

  it('returns the update itself for a single update, whatever its weight', () => {
    const tensors = { w: randomArray(10, 1) };
    expect(Array.from(weightedMean([{ weight: 17, tensors }]).w)).toEqual(Array.from(tensors.w));
  });

  it('equals a float64 reference to float32 rounding', () => {
    const updates = randomUpdates(9, 3);
    const mean = weightedMean(updates);
    const expected = reference(updates);
    expect(Object.keys(mean)).toEqual(['g_w', 'd_b']);
    for (const name of Object.keys(expected)) {
      expect(mean[name]).toBeInstanceOf(Float32Array);
      // One float32 rounding of the float64 result: at most 2^-24 relative.
      expect(maxRelativeDifference(mean[name], expected[name]), name).toBeLessThanOrEqual(2 ** -24);
    }
  });

  it('does not depend on the order the updates arrived in (within 1e-7)', () => {
    const updates = randomUpdates(12, 5);
    const forward = weightedMean(updates);
    const backward = weightedMean(updates.slice().reverse());
    const order = shuffle(
      Uint32Array.from(updates, (_, k) => k),
      77,
    );
    const mixed = weightedMean(Array.from(order, (k) => updates[k]));
    for (const name of Object.keys(forward)) {
      expect(maxRelativeDifference(backward[name], forward[name]), name).toBeLessThan(1e-7);
      expect(maxRelativeDifference(mixed[name], forward[name]), name).toBeLessThan(1e-7);
    }
  });

  it('does not change its inputs', () => {
    const updates = randomUpdates(3, 9);
    const copies: NamedArrays[] = updates.map((update) => structuredClone(update.tensors));
    weightedMean(updates);
    updates.forEach((update, k) => expect(update.tensors).toEqual(copies[k]));
  });

  it('throws on no updates, weights summing to zero, and tensors of different lengths', () => {
    expect(() => weightedMean([])).toThrow(/no updates/);
    expect(() => weightedMean([{ weight: 0, tensors: { w: new Float32Array(2) } }])).toThrow(/sum to zero/);
    expect(() =>
      weightedMean([
        { weight: 0, tensors: { w: new Float32Array(2) } },
        { weight: 0, tensors: { w: new Float32Array(2) } },
      ]),
    ).toThrow(/sum to zero/);
    expect(() =>
      weightedMean([
        { weight: 1, tensors: { w: new Float32Array(2) } },
        { weight: 1, tensors: { w: new Float32Array(3) } },
      ]),
    ).toThrow(/tensor w differs in length/);
    expect(() =>
      weightedMean([
        { weight: 1, tensors: { w: new Float32Array(2), v: new Float32Array(1) } },
        { weight: 1, tensors: { w: new Float32Array(2) } },
      ]),
    ).toThrow(/hold different tensors/);
    // A tensor only a later update has is an error too, not silently dropped.
    expect(() =>
      weightedMean([
        { weight: 1, tensors: { w: new Float32Array(2) } },
        { weight: 1, tensors: { w: new Float32Array(2), v: new Float32Array(1) } },
      ]),
    ).toThrow(/hold different tensors/);
  });
});
