import type { NamedArrays } from '../codec/types.ts';
import type { OptimizerConfig } from '../models/types.ts';

/** Adam's moments per tensor and its step count; saved with every checkpoint. */
export interface AdamState {
  step: number;
  firstMoment: NamedArrays;
  secondMoment: NamedArrays;
}

/** Zeroed moments for the given tensors. */
export function createAdamState(weights: NamedArrays, names: readonly string[] = Object.keys(weights)): AdamState {
  const firstMoment: NamedArrays = {};
  const secondMoment: NamedArrays = {};
  for (const name of names) {
    firstMoment[name] = new Float32Array(weights[name].length);
    secondMoment[name] = new Float32Array(weights[name].length);
  }
  return { step: 0, firstMoment, secondMoment };
}

/**
 * One Adam step, in place on `weights` and `state`, for the tensors the state
 * holds. Same update as tf.train.adam, so a single process using tfjs's Adam and
 * the coordinator agree.
 */
export function adamStep(weights: NamedArrays, grads: NamedArrays, state: AdamState, config: OptimizerConfig): void {
  state.step += 1;
  const { learningRate, beta1, beta2, epsilon } = config;
  const firstCorrection = 1 - beta1 ** state.step;
  const secondCorrection = 1 - beta2 ** state.step;
  for (const name of Object.keys(state.firstMoment)) {
    const w = weights[name];
    const g = grads[name];
    const m = state.firstMoment[name];
    const v = state.secondMoment[name];
    for (let i = 0; i < w.length; i++) {
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      w[i] -= (learningRate * (m[i] / firstCorrection)) / (Math.sqrt(v[i] / secondCorrection) + epsilon);
    }
  }
}
