/** Seeded updates for the aggregation tests (contract and per rule). Not imported by non-test code. */
import type { NamedArrays } from '../codec/types.ts';
import { gaussian } from '../training/random.ts';
import type { AggregationOptions, WeightedUpdate } from './types.ts';

/** Options that leave every rule its derived radius and no weight cap. */
export const OPTIONS: AggregationOptions = { maxShare: 1, clipNorm: 0, trimFraction: 0.2, iterations: 10 };

/** Two tensors of different sizes, named like a model's, so per-tensor loops are exercised. */
export const SIZES: Record<string, number> = { g_w: 300, d_b: 97 };

/**
 * Honest-looking updates: one shared mean gradient plus each worker's own
 * noise, scaled by `noise` (1 = noise as large as the signal) and by
 * 1/sqrt(weight / 16), as a batch of `weight` samples would have.
 */
export function honestUpdates(weights: readonly number[], seed: number, noise = 1): WeightedUpdate[] {
  const mean = Object.fromEntries(Object.entries(SIZES).map(([name, size], t) => [name, gaussian(size, seed * 1000 + t)]));
  return weights.map((weight, k) => ({
    weight,
    tensors: Object.fromEntries(
      Object.entries(mean).map(([name, values], t) => {
        const own = gaussian(values.length, seed * 1000 + 100 * (k + 1) + t);
        const spread = noise / Math.sqrt(weight / 16);
        return [name, values.map((value, i) => value + spread * own[i])];
      }),
    ),
  }));
}

/** The same tensors times `factor` (an attacker's scaled or sign-flipped copy). */
export function scaled(tensors: NamedArrays, factor: number): NamedArrays {
  return Object.fromEntries(Object.entries(tensors).map(([name, values]) => [name, values.map((value) => value * factor)]));
}

/** The largest |a - b| over all tensors. */
export function maxDifference(a: NamedArrays, b: NamedArrays): number {
  let worst = 0;
  for (const [name, values] of Object.entries(a)) {
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] - b[name][i]));
  }
  return worst;
}

/** The largest |value| over all tensors: a scale for tolerances. */
export function maxAbs(tensors: NamedArrays): number {
  let worst = 0;
  for (const values of Object.values(tensors)) for (const value of values) worst = Math.max(worst, Math.abs(value));
  return worst;
}
