import type { WeightedUpdate } from './types.ts';

/**
 * Reduces one coordinate from its values sorted ascending, each with its
 * share: `values[0..count)` and `shares[0..count)`, shares summing to ~1.
 */
export type CoordinateReducer = (values: Float64Array, shares: Float64Array, count: number) => number;

/**
 * Applies `reduce` at every coordinate of every tensor to the values
 * scales[k] x updates[k] there, sorted. Two scratch arrays of n serve every
 * coordinate and the sort is an insertion sort (n is a handful of workers),
 * so nothing is allocated per coordinate. Results in float64.
 */
export function reduceCoordinates(
  updates: readonly WeightedUpdate[],
  scales: ArrayLike<number>,
  shares: ArrayLike<number>,
  reduce: CoordinateReducer,
): Record<string, Float64Array> {
  const values = new Float64Array(updates.length);
  const sortedShares = new Float64Array(updates.length);
  const result: Record<string, Float64Array> = {};
  for (const name of Object.keys(updates[0].tensors)) {
    const arrays = updates.map((update) => update.tensors[name]);
    result[name] = reduceTensor(arrays, scales, shares, reduce, values, sortedShares);
  }
  return result;
}

/** One tensor of reduceCoordinates (a function of its own so V8 optimises the loop whole, not by on-stack replacement). */
function reduceTensor(
  arrays: readonly Float32Array[],
  scales: ArrayLike<number>,
  shares: ArrayLike<number>,
  reduce: CoordinateReducer,
  values: Float64Array,
  sortedShares: Float64Array,
): Float64Array {
  const n = arrays.length;
  const out = new Float64Array(arrays[0].length);
  for (let i = 0; i < out.length; i++) {
    for (let k = 0; k < n; k++) {
      const value = scales[k] * arrays[k][i];
      const share = shares[k];
      // Insertion: shift larger values right; equal values keep arrival order (their result does not depend on it).
      let j = k - 1;
      while (j >= 0 && values[j] > value) {
        values[j + 1] = values[j];
        sortedShares[j + 1] = sortedShares[j];
        j--;
      }
      values[j + 1] = value;
      sortedShares[j + 1] = share;
    }
    out[i] = reduce(values, sortedShares, n);
  }
  return out;
}

/** Float64 tensors rounded once to float32. */
export function toFloat32(tensors: Record<string, Float64Array>): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(tensors).map(([name, values]) => [name, new Float32Array(values)]));
}

/**
 * The weighted median of sorted values: the first whose cumulative share
 * reaches half, or the midpoint of it and the next when it reaches half
 * exactly (so two equal shares give the middle, as the plain median does,
 * and an update of weight 2 acts as the same update twice).
 */
export function sortedWeightedMedian(values: Float64Array, shares: Float64Array, count: number): number {
  let total = 0;
  for (let k = 0; k < count; k++) total += shares[k];
  const half = total / 2;
  // Shares such as 1/6 do not add up to exactly one half in floating point.
  const tolerance = total * 1e-12;
  let cumulative = 0;
  for (let k = 0; k < count; k++) {
    cumulative += shares[k];
    if (cumulative > half + tolerance) return values[k];
    if (cumulative >= half - tolerance) {
      // Exactly half: the next value with weight is the upper median (zero shares carry none).
      for (let next = k + 1; next < count; next++) if (shares[next] > 0) return (values[k] + values[next]) / 2;
      return values[k];
    }
  }
  return values[count - 1];
}
