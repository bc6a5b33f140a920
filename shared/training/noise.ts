import type { NamedArrays } from '../codec/types.ts';
import type { Trainer } from '../models/types.ts';
import { deriveSeed } from './random.ts';

/**
 * The random inputs (latents, timesteps, noise) of a batch, one row per
 * example, each row drawn from the round's seed and that example's dataset
 * index alone. However a round's examples are split among workers, every
 * example gets the same row, so the round's mean gradient is the one a single
 * process would compute on the union batch, up to float summation order: a run
 * repeats whatever the fleet (with one seed per worker, 1 and 4 workers drew
 * different latents and trained different models).
 */
export function exampleNoise(trainer: Pick<Trainer, 'drawNoise'>, seed: number, sampleIndices: readonly number[]): NamedArrays {
  return concatNoise(sampleIndices.map((index) => trainer.drawNoise(1, deriveSeed(seed, index))));
}

/** Noise for rows [first, first + count) of a batch at one local step. */
export type LocalStepNoise = (step: number, first: number, count: number) => NamedArrays;

/** Local-update mode's noise: each inner step's examples drawn as exampleNoise does, from the seed of that step. */
export function localStepNoise(trainer: Pick<Trainer, 'drawNoise'>, seed: number, sampleIndices: readonly number[]): LocalStepNoise {
  return (step, first, count) => exampleNoise(trainer, deriveSeed(seed, step), sampleIndices.slice(first, first + count));
}

/** Noise parts joined along the first axis (rows in order). */
export function concatNoise(parts: readonly NamedArrays[]): NamedArrays {
  const result: NamedArrays = {};
  if (parts.length === 0) return result;
  for (const name of Object.keys(parts[0])) {
    const joined = new Float32Array(parts.reduce((sum, part) => sum + part[name].length, 0));
    let offset = 0;
    for (const part of parts) {
      joined.set(part[name], offset);
      offset += part[name].length;
    }
    result[name] = joined;
  }
  return result;
}
