/** A seeded uint32 stream (mulberry32): small, fast, and the same in every runtime. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Seeded uniform values in [0, 1) from the same stream. */
export function createUniform(seed: number): () => number {
  const next = createRandom(seed);
  return () => next() / 4294967296;
}

/** Mixes several integers into one seed, so derived streams (per round, per shard) do not overlap. */
export function deriveSeed(...parts: number[]): number {
  let hash = 0x811c9dc5;
  for (const part of parts) {
    hash = Math.imul(hash ^ (part >>> 0), 0x01000193) >>> 0;
    hash = Math.imul(hash ^ (hash >>> 13), 0x5bd1e995) >>> 0;
  }
  return (hash ^ (hash >>> 15)) >>> 0;
}

/** Fisher–Yates shuffle in place, driven by a seeded stream. */
export function shuffle<T extends { length: number; [index: number]: number }>(values: T, seed: number): T {
  const next = createRandom(seed);
  for (let i = values.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const swap = values[i];
    values[i] = values[j];
    values[j] = swap;
  }
  return values;
}

/**
 * `count` standard normal values from a seed (Box–Muller over the seeded
 * stream). Drawn in plain JS so every backend and runtime gets the very same
 * noise for the same seed. With a `bound`, values beyond ±bound are dropped and
 * the stream drawn on (a truncated normal, BigGAN's truncation trick); with no
 * bound the values are the same as the plain draw's.
 */
export function gaussian(count: number, seed: number, bound = Infinity): Float32Array {
  if (!(bound > 0)) throw new RangeError(`gaussian: bound ${bound} must be positive`);
  const next = createRandom(seed);
  const values = new Float32Array(count);
  let filled = 0;
  const keep = (value: number) => {
    if (filled < count && Math.abs(value) <= bound) values[filled++] = value;
  };
  while (filled < count) {
    // (next() + 1) / 2^32 lies in (0, 1]: the logarithm stays finite.
    const radius = Math.sqrt(-2 * Math.log((next() + 1) / 4294967296));
    const angle = (2 * Math.PI * next()) / 4294967296;
    keep(radius * Math.cos(angle));
    keep(radius * Math.sin(angle));
  }
  return values;
}
