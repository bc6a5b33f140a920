import type { NamedArrays } from '../codec/types.ts';

/** One worker's contribution: its tensors and its weight (the samples it covers). */
export interface WeightedUpdate {
  weight: number;
  tensors: NamedArrays;
}

/**
 * The weighted mean of the updates, tensor by tensor. With weights equal to the
 * sample counts and each update the mean gradient over its own batch, this is
 * the mean gradient over the union of the batches. Sums run in float64 so the
 * result does not depend on the order the updates arrived in beyond rounding.
 */
export function weightedMean(updates: readonly WeightedUpdate[]): NamedArrays {
  if (updates.length === 0) throw new Error('weightedMean: no updates');
  const total = updates.reduce((sum, update) => sum + update.weight, 0);
  if (!(total > 0)) throw new Error('weightedMean: the weights sum to zero');
  const names = Object.keys(updates[0].tensors);
  for (const update of updates) {
    if (Object.keys(update.tensors).length !== names.length) throw new Error('weightedMean: updates hold different tensors');
  }
  const result: NamedArrays = {};
  for (const name of names) {
    const length = updates[0].tensors[name].length;
    const sum = new Float64Array(length);
    for (const update of updates) {
      const values = update.tensors[name];
      if (!values || values.length !== length) throw new Error(`weightedMean: tensor ${name} differs in length between updates`);
      const scale = update.weight / total;
      for (let i = 0; i < length; i++) sum[i] += scale * values[i];
    }
    result[name] = Float32Array.from(sum);
  }
  return result;
}
