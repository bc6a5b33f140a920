import { describe, expect, it } from 'vitest';
import { concatNoise, exampleNoise, localStepNoise } from './noise.ts';
import { deriveSeed, gaussian } from './random.ts';

/** A model's noise with two inputs of different widths per example, as the DDPM draws timesteps and noise images. */
const trainer = {
  drawNoise: (count: number, seed: number) => ({ latents: gaussian(count * 3, seed), timesteps: gaussian(count, deriveSeed(seed, 1)) }),
};

describe('exampleNoise', () => {
  const indices = [7, 300, 12, 9001, 4, 58];

  it('draws the same rows however the examples are split among workers', () => {
    const union = exampleNoise(trainer, 99, indices);
    for (const parts of [
      [2, 4],
      [1, 1, 4],
      [3, 3],
      [1, 2, 1, 2],
    ]) {
      let start = 0;
      const split = parts.map((size) => exampleNoise(trainer, 99, indices.slice(start, (start += size))));
      expect(concatNoise(split)).toEqual(union);
    }
    expect(union.latents).toHaveLength(indices.length * 3);
    expect(union.timesteps).toHaveLength(indices.length);
  });

  it('gives each example its own row, and each round (seed) new ones', () => {
    const rows = exampleNoise(trainer, 99, [5, 6]).latents;
    expect(rows.subarray(0, 3)).not.toEqual(rows.subarray(3, 6));
    expect(exampleNoise(trainer, 100, [5]).latents).not.toEqual(rows.subarray(0, 3));
    // A row depends on the example, not its place in the batch.
    expect(exampleNoise(trainer, 99, [6, 5]).latents.subarray(3, 6)).toEqual(rows.subarray(0, 3));
  });
});

describe('localStepNoise', () => {
  it("draws each step's rows as exampleNoise does from the step's seed", () => {
    const indices = [10, 11, 12, 13, 14, 15, 16, 17];
    const noise = localStepNoise(trainer, 5, indices);
    expect(noise(2, 4, 2)).toEqual(exampleNoise(trainer, deriveSeed(5, 2), [14, 15]));
    expect(noise(0, 0, 2)).not.toEqual(noise(1, 0, 2));
  });
});

describe('concatNoise', () => {
  it('joins parts row after row, and nothing for no parts', () => {
    const joined = concatNoise([{ a: Float32Array.of(1, 2) }, { a: Float32Array.of(3) }]);
    expect(Array.from(joined.a)).toEqual([1, 2, 3]);
    expect(concatNoise([])).toEqual({});
  });
});
