/**
 * Noise schedules of a DDPM, pure float64 math. Step indices run 0 .. T-1:
 * index t is step t+1 of the paper, so `alphaBars[0]` is ᾱ_1 and the value
 * before the first step (ᾱ_0 = 1, clean data) is `alphaBarsPrevious[0]`.
 */

export type ScheduleKind = 'linear' | 'cosine';

/** Largest β a schedule may take: β = 1 would make ᾱ = 0 and x̂_0 = x / sqrt(ᾱ) infinite. */
export const MAX_BETA = 0.999;

/** Offset s of the cosine schedule: keeps β_1 from being vanishingly small (Nichol & Dhariwal 2021). */
export const COSINE_OFFSET = 0.008;

/**
 * The DDPM paper's linear betas, 1e-4 to 0.02 at T = 1000. Other T scale both
 * ends by 1000/T (Nichol & Dhariwal's convention), so ᾱ_T stays near zero for
 * short schedules; at T = 1000 this is exactly the paper's schedule.
 */
export function linearBetas(steps: number): Float64Array {
  const scale = 1000 / steps;
  const start = 1e-4 * scale;
  const end = 0.02 * scale;
  const betas = new Float64Array(steps);
  for (let t = 0; t < steps; t++) {
    const beta = steps === 1 ? start : start + ((end - start) * t) / (steps - 1);
    betas[t] = Math.min(beta, MAX_BETA);
  }
  return betas;
}

/** f(t) = cos²(((t/T) + s) / (1 + s) · π/2), the cosine schedule's ᾱ before normalisation. */
export function cosineSquared(t: number, steps: number, offset = COSINE_OFFSET): number {
  return Math.cos(((t / steps + offset) / (1 + offset)) * (Math.PI / 2)) ** 2;
}

/** The cosine schedule: ᾱ_t = f(t)/f(0), β_t = 1 - ᾱ_t/ᾱ_{t-1}, clipped at MAX_BETA (only the last step is). */
export function cosineBetas(steps: number): Float64Array {
  const betas = new Float64Array(steps);
  for (let t = 0; t < steps; t++) {
    betas[t] = Math.min(1 - cosineSquared(t + 1, steps) / cosineSquared(t, steps), MAX_BETA);
  }
  return betas;
}

/** Everything the loss and the samplers need, per step index, in float64. */
export interface NoiseSchedule {
  steps: number;
  betas: Float64Array;
  /** ᾱ_t = Π_{s ≤ t} (1 - β_s). */
  alphaBars: Float64Array;
  /** ᾱ_{t-1}, with 1 before the first step. */
  alphaBarsPrevious: Float64Array;
  /** β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t), the variance of q(x_{t-1} | x_t, x_0); 0 at the first step. */
  posteriorVariance: Float64Array;
  /** Coefficient of x_0 in the posterior mean: sqrt(ᾱ_{t-1}) β_t / (1 - ᾱ_t). */
  posteriorMeanX0: Float64Array;
  /** Coefficient of x_t in the posterior mean: sqrt(α_t) (1 - ᾱ_{t-1}) / (1 - ᾱ_t). */
  posteriorMeanXt: Float64Array;
}

/** The schedule derived from a sequence of betas. */
export function scheduleFromBetas(betas: Float64Array): NoiseSchedule {
  const steps = betas.length;
  const alphaBars = new Float64Array(steps);
  const alphaBarsPrevious = new Float64Array(steps);
  const posteriorVariance = new Float64Array(steps);
  const posteriorMeanX0 = new Float64Array(steps);
  const posteriorMeanXt = new Float64Array(steps);
  let product = 1;
  for (let t = 0; t < steps; t++) {
    alphaBarsPrevious[t] = product;
    product *= 1 - betas[t];
    alphaBars[t] = product;
    const previous = alphaBarsPrevious[t];
    posteriorVariance[t] = (betas[t] * (1 - previous)) / (1 - product);
    posteriorMeanX0[t] = (Math.sqrt(previous) * betas[t]) / (1 - product);
    posteriorMeanXt[t] = (Math.sqrt(1 - betas[t]) * (1 - previous)) / (1 - product);
  }
  return { steps, betas: betas.slice(), alphaBars, alphaBarsPrevious, posteriorVariance, posteriorMeanX0, posteriorMeanXt };
}

/** The named schedule over `steps` steps. */
export function makeSchedule(kind: ScheduleKind, steps: number): NoiseSchedule {
  return scheduleFromBetas(kind === 'linear' ? linearBetas(steps) : cosineBetas(steps));
}
