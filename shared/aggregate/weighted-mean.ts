import type { NamedArrays } from '../codec/types.ts';
import type { WeightedUpdate } from './types.ts';
import { madeArena } from './simd.ts';
import { checkUpdates } from './updates.ts';

export type { WeightedUpdate } from './types.ts';

/**
 * The weighted mean of the updates, tensor by tensor. With weights equal to the
 * sample counts and each update the mean gradient over its own batch, this is
 * the mean gradient over the union of the batches. Sums run in float64 so the
 * result does not depend on the order the updates arrived in beyond rounding.
 */
export function weightedMean(updates: readonly WeightedUpdate[]): NamedArrays {
  checkUpdates(updates, 'weightedMean');
  const total = updates.reduce((sum, update) => sum + update.weight, 0);
  return weightedSum(
    updates,
    updates.map((update) => update.weight / total),
  );
}

/**
 * Σ coefficients[k] · updates[k].tensors, tensor by tensor, summed in float64
 * and rounded once to float32. The caller has checked the updates agree.
 */
export function weightedSum(updates: readonly WeightedUpdate[], coefficients: ArrayLike<number>): NamedArrays {
  const result: NamedArrays = {};
  for (const name of Object.keys(updates[0].tensors)) {
    const sum = new Float64Array(updates[0].tensors[name].length);
    for (let k = 0; k < updates.length; k++) if (coefficients[k] !== 0) addScaled(sum, updates[k].tensors[name], coefficients[k]);
    result[name] = new Float32Array(sum);
  }
  return result;
}

/**
 * sum += scale x values. A function of its own so V8 optimises the loop as a
 * whole: left inside the caller's loops it ran ~5x slower (on-stack replacement).
 * Arrays in this thread's SimdArena (shared/aggregate/simd.ts) go to its kernel: the same values, ~5x faster.
 */
export function addScaled(sum: Float64Array, values: Float32Array, scale: number): void {
  const arena = madeArena();
  if (arena?.holds(sum) && arena.holds(values) && sum.length === values.length) {
    arena.addScaled(sum, values, scale);
    return;
  }
  const length = sum.length;
  let i = 0;
  // Four a step: fewer loop checks, and the loads of one element do not wait on the store of the one before.
  for (; i + 3 < length; i += 4) {
    sum[i] += scale * values[i];
    sum[i + 1] += scale * values[i + 1];
    sum[i + 2] += scale * values[i + 2];
    sum[i + 3] += scale * values[i + 3];
  }
  for (; i < length; i++) sum[i] += scale * values[i];
}

/**
 * sum / divisor, rounded to float32. A loop rather than
 * `Float32Array.from(sum, mapFn)`, which goes through the iterator protocol
 * and a call per element: ~20x slower, 60 ms a round for the default dcgan.
 */
export function dividedToFloat32(sum: Float64Array, divisor: number): Float32Array {
  const result = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) result[i] = sum[i] / divisor;
  return result;
}
