import type { NoiseSchedule } from './schedule.ts';

/**
 * The reverse process, pure float64 math over typed arrays: the trainer hands
 * in its network as an ε-model, the tests hand in closed forms.
 */

/** Predicted noise for every value of x at step index t (one call per step, the whole batch at once). */
export type EpsilonModel = (x: Float64Array, t: number) => Float32Array | Float64Array | Promise<Float32Array | Float64Array>;

export interface SamplerOptions {
  /**
   * Clip the predicted x̂_0 to [-1, 1] (the data range) and re-derive ε from
   * it, as improved-diffusion does; keeps early, poor predictions from
   * throwing the trajectory out of range.
   */
  clipDenoised?: boolean;
}

/** The DDIM step indices, T-1 down to 0, `count` of them evenly spaced (the first is pure noise). */
export function samplingTimesteps(steps: number, count: number): number[] {
  if (count >= steps) return Array.from({ length: steps }, (_, i) => steps - 1 - i);
  if (count <= 1) return [steps - 1];
  const chosen = new Set<number>();
  for (let i = 0; i < count; i++) chosen.add(Math.round((i * (steps - 1)) / (count - 1)));
  return [...chosen].sort((a, b) => b - a);
}

/**
 * x̂_0 = (x_t - sqrt(1-ᾱ) ε) / sqrt(ᾱ), in place into `x0`; with clipping, x̂_0 is
 * clipped and ε (in place into `eps`) re-derived so both stay consistent with x_t.
 */
function predictX0(x: Float64Array, eps: Float64Array, alphaBar: number, clip: boolean, x0: Float64Array): void {
  const signal = Math.sqrt(alphaBar);
  const noise = Math.sqrt(1 - alphaBar);
  for (let i = 0; i < x.length; i++) {
    let value = (x[i] - noise * eps[i]) / signal;
    if (clip && (value > 1 || value < -1)) {
      value = Math.max(-1, Math.min(1, value));
      eps[i] = (x[i] - signal * value) / noise;
    }
    x0[i] = value;
  }
}

/**
 * One deterministic DDIM step (η = 0) from ᾱ_t to ᾱ_prev:
 * x_prev = sqrt(ᾱ_prev) x̂_0 + sqrt(1 - ᾱ_prev) ε. With ᾱ_prev = 1 it returns x̂_0.
 */
export function ddimStep(x: Float64Array, epsilon: ArrayLike<number>, alphaBar: number, alphaBarPrevious: number, options: SamplerOptions = {}): Float64Array {
  const eps = Float64Array.from(epsilon);
  const x0 = new Float64Array(x.length);
  predictX0(x, eps, alphaBar, options.clipDenoised ?? false, x0);
  const signal = Math.sqrt(alphaBarPrevious);
  const noise = Math.sqrt(1 - alphaBarPrevious);
  for (let i = 0; i < x.length; i++) x0[i] = signal * x0[i] + noise * eps[i];
  return x0;
}

/**
 * One ancestral DDPM step from index t to t-1: the posterior mean at x̂_0 plus
 * sqrt(β̃_t) z. At t = 0 β̃ is 0 and the mean is x̂_0 itself.
 */
export function ddpmStep(
  x: Float64Array,
  epsilon: ArrayLike<number>,
  schedule: NoiseSchedule,
  t: number,
  z: ArrayLike<number>,
  options: SamplerOptions = {},
): Float64Array {
  const eps = Float64Array.from(epsilon);
  const x0 = new Float64Array(x.length);
  predictX0(x, eps, schedule.alphaBars[t], options.clipDenoised ?? false, x0);
  const a = schedule.posteriorMeanX0[t];
  const b = schedule.posteriorMeanXt[t];
  const deviation = Math.sqrt(schedule.posteriorVariance[t]);
  for (let i = 0; i < x.length; i++) x0[i] = a * x0[i] + b * x[i] + (deviation > 0 ? deviation * z[i] : 0);
  return x0;
}

/** DDIM sampling from x_T over `count` evenly spaced steps; returns x_0. */
export async function ddimSample(
  epsModel: EpsilonModel,
  xT: ArrayLike<number>,
  schedule: NoiseSchedule,
  count: number,
  options: SamplerOptions = {},
): Promise<Float64Array> {
  const timesteps = samplingTimesteps(schedule.steps, count);
  let x: Float64Array = Float64Array.from(xT);
  for (let k = 0; k < timesteps.length; k++) {
    const t = timesteps[k];
    const previous = k + 1 < timesteps.length ? schedule.alphaBars[timesteps[k + 1]] : 1;
    x = ddimStep(x, await epsModel(x, t), schedule.alphaBars[t], previous, options);
  }
  return x;
}

/** Ancestral DDPM sampling from x_T over all T steps; `noiseAt(t)` gives the fresh z of step t. */
export async function ddpmSample(
  epsModel: EpsilonModel,
  xT: ArrayLike<number>,
  schedule: NoiseSchedule,
  noiseAt: (t: number) => ArrayLike<number>,
  options: SamplerOptions = {},
): Promise<Float64Array> {
  let x: Float64Array = Float64Array.from(xT);
  for (let t = schedule.steps - 1; t >= 0; t--) {
    // No noise is added at the last step: skip drawing it.
    const z = t > 0 ? noiseAt(t) : new Float64Array(0);
    x = ddpmStep(x, await epsModel(x, t), schedule, t, z, options);
  }
  return x;
}

/** Classifier-free guidance: ε = ε_uncond + w (ε_cond - ε_uncond). */
export function guide(conditional: ArrayLike<number>, unconditional: ArrayLike<number>, scale: number): Float64Array {
  const result = new Float64Array(conditional.length);
  for (let i = 0; i < result.length; i++) result[i] = unconditional[i] + scale * (conditional[i] - unconditional[i]);
  return result;
}
