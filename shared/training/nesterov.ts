import type { NamedArrays } from '../codec/types.ts';

/** The outer optimizer of local-update (DiLoCo-style) training: SGD with Nesterov momentum. */
export interface OuterConfig {
  learningRate: number;
  momentum: number;
}

/** Zeroed momentum for the given tensors. */
export function createMomentum(weights: NamedArrays, names: readonly string[] = Object.keys(weights)): NamedArrays {
  return Object.fromEntries(names.map((name) => [name, new Float32Array(weights[name].length)]));
}

/**
 * One outer step, in place, for the tensors `momentum` holds. `delta` is the
 * averaged pseudo-gradient (weights before the workers' local steps minus
 * after): m = μm + Δ; w -= lr (Δ + μm).
 */
export function nesterovStep(weights: NamedArrays, delta: NamedArrays, momentum: NamedArrays, config: OuterConfig): void {
  const { learningRate, momentum: mu } = config;
  for (const name of Object.keys(momentum)) {
    const w = weights[name];
    const d = delta[name];
    const m = momentum[name];
    for (let i = 0; i < w.length; i++) {
      m[i] = mu * m[i] + d[i];
      w[i] -= learningRate * (d[i] + mu * m[i]);
    }
  }
}
