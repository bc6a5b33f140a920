import type { NamedArrays } from '../codec/types.ts';

/**
 * The decay of the moving average at training step `step` (1 for the first
 * step taken): (1 + step) / (10 + step), capped at the model's `decay`. A
 * fixed 0.999 would leave the average ~55% initial weights after 600 steps,
 * and early samples would be noise; the warm-up lets it follow training from
 * the start and settle on the full decay once steps are plenty.
 */
export function emaDecayAt(step: number, decay: number): number {
  return Math.min(decay, (1 + step) / (10 + step));
}

/**
 * Folds `weights` into their moving average, in place, and returns it; with
 * no average yet, it starts as a copy of the weights.
 */
export function updateEma(average: NamedArrays | undefined, weights: NamedArrays, decay: number): NamedArrays {
  if (!average) return structuredClone(weights);
  for (const [name, values] of Object.entries(weights)) {
    const kept = average[name];
    for (let i = 0; i < values.length; i++) kept[i] = decay * kept[i] + (1 - decay) * values[i];
  }
  return average;
}
