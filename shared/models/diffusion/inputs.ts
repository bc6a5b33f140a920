import type { NoiseSchedule } from './schedule.ts';

/**
 * The denoiser's inputs, computed per example in plain JS (float64, rounded
 * once to float32): identical on every backend, and no custom layer is needed
 * to embed the timestep inside the network.
 */

/**
 * The transformer's sinusoidal embedding of each timestep: sin(t f_i) then
 * cos(t f_i), with f_i = 10000^(-i / (dim/2)); `dim` must be even.
 */
export function timestepEmbedding(timesteps: ArrayLike<number>, dim: number): Float32Array {
  const half = dim / 2;
  const result = new Float32Array(timesteps.length * dim);
  for (let example = 0; example < timesteps.length; example++) {
    const row = example * dim;
    for (let i = 0; i < half; i++) {
      const angle = timesteps[example] * Math.exp((-Math.log(10000) * i) / half);
      result[row + i] = Math.sin(angle);
      result[row + half + i] = Math.cos(angle);
    }
  }
  return result;
}

/**
 * x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε per example, with x_0 = 2·pixels - 1
 * (pixels in [0, 1] from the data layer, x_0 in the model's [-1, 1]).
 */
export function noisedImages(pixels: Float32Array, timesteps: ArrayLike<number>, noise: Float32Array, schedule: NoiseSchedule): Float32Array {
  const size = pixels.length / timesteps.length;
  const result = new Float32Array(pixels.length);
  for (let example = 0; example < timesteps.length; example++) {
    const alphaBar = schedule.alphaBars[timesteps[example]];
    const signal = Math.sqrt(alphaBar);
    const spread = Math.sqrt(1 - alphaBar);
    for (let i = example * size; i < (example + 1) * size; i++) result[i] = signal * (2 * pixels[i] - 1) + spread * noise[i];
  }
  return result;
}

/**
 * One-hot rows of size classes + 1; the extra last class means "no label",
 * taken where `dropLabel` is 1 (or the label is negative) — the unconditional
 * model classifier-free guidance needs.
 */
export function labelOneHot(labels: ArrayLike<number>, classes: number, dropLabel?: ArrayLike<number>): Float32Array {
  const width = classes + 1;
  const result = new Float32Array(labels.length * width);
  for (let example = 0; example < labels.length; example++) {
    const label = labels[example];
    if (!(label < classes)) throw new Error(`labelOneHot: label ${label} of example ${example} is not below ${classes} classes`);
    const dropped = (dropLabel && dropLabel[example] !== 0) || label < 0;
    result[example * width + (dropped ? classes : label)] = 1;
  }
  return result;
}
