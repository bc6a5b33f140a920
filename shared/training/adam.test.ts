import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import type { NamedArrays } from '../codec/types.ts';
import type { OptimizerConfig } from '../models/types.ts';
import { adamStep, createAdamState } from './adam.ts';
import { createRandom } from './random.ts';
import { relativeError } from '../models/trainer-contract.ts';

/** Uniform floats in [-scale, scale) from a seeded stream. */
function randomArray(length: number, seed: number, scale = 1): Float32Array {
  const next = createRandom(seed);
  return Float32Array.from({ length }, () => ((next() / 2 ** 32) * 2 - 1) * scale);
}

const shapes: Record<string, number[]> = { g_kernel: [4, 5], g_bias: [5], d_kernel: [3, 3, 2] };
const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
// A large learning rate so the weights move well beyond float32 rounding in five steps.
const config: OptimizerConfig = { learningRate: 0.01, beta1: 0.5, beta2: 0.999, epsilon: 1e-8 };

describe('adamStep', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('matches tf.train.adam over 5 steps with changing gradients', () => {
    const names = Object.keys(shapes);
    const initial: NamedArrays = Object.fromEntries(names.map((name, i) => [name, randomArray(sizeOf(shapes[name]), 100 + i)]));
    const weights = structuredClone(initial);
    const state = createAdamState(weights);
    const variables = Object.fromEntries(names.map((name) => [name, tf.variable(tf.tensor(initial[name], shapes[name]), true, `adam_test_${name}`)]));
    const optimizer = tf.train.adam(config.learningRate, config.beta1, config.beta2, config.epsilon);

    for (let step = 0; step < 5; step++) {
      // Gradients change in scale and sign each step, so both moments matter.
      const grads: NamedArrays = Object.fromEntries(names.map((name, i) => [name, randomArray(sizeOf(shapes[name]), 1000 * step + i, 1 + step)]));
      adamStep(weights, grads, state, config);
      const gradTensors = names.map((name) => ({ name: variables[name].name, tensor: tf.tensor(grads[name], shapes[name]) }));
      optimizer.applyGradients(gradTensors);
      tf.dispose(gradTensors.map((grad) => grad.tensor));
      expect(state.step).toBe(step + 1);
      for (const name of names) {
        const expected = variables[name].dataSync() as Float32Array;
        const movedOurs = weights[name].map((value, i) => value - initial[name][i]);
        const movedTf = expected.map((value, i) => value - initial[name][i]);
        expect(relativeError(weights[name], expected), name).toBeLessThan(1e-5);
        // The displacement agrees too, not only the (much larger) weights. Looser: tfjs rounds to
        // float32 after every op, and each rounding of a weight near 1 is ~1e-5 of a 0.01 move.
        expect(relativeError(movedOurs, movedTf), `${name} displacement`).toBeLessThan(1e-4);
      }
    }
    optimizer.dispose();
    tf.dispose(Object.values(variables));
  });

  it('moves only the tensors the state holds and counts its steps', () => {
    const weights: NamedArrays = { g_w: randomArray(6, 1), d_w: randomArray(4, 2) };
    const untouched = weights.d_w.slice();
    const state = createAdamState(weights, ['g_w']);
    expect(Object.keys(state.firstMoment)).toEqual(['g_w']);
    expect(Object.keys(state.secondMoment)).toEqual(['g_w']);
    expect(state.step).toBe(0);
    const before = weights.g_w.slice();
    for (let step = 1; step <= 3; step++) {
      adamStep(weights, { g_w: randomArray(6, 10 + step), d_w: randomArray(4, 20 + step) }, state, config);
      expect(state.step).toBe(step);
    }
    expect(Array.from(weights.d_w)).toEqual(Array.from(untouched));
    expect(weights.g_w.every((value, i) => value !== before[i])).toBe(true);
  });

  it('takes a first step of size learningRate against the sign of the gradient', () => {
    // With bias correction, step 1 moves each weight by lr * g / (|g| + eps) ≈ lr * sign(g).
    const weights: NamedArrays = { w: new Float32Array([0, 0, 0]) };
    const state = createAdamState(weights);
    adamStep(weights, { w: new Float32Array([2, -0.5, 1e-3]) }, state, config);
    expect(weights.w[0]).toBeCloseTo(-config.learningRate, 6);
    expect(weights.w[1]).toBeCloseTo(config.learningRate, 6);
    expect(weights.w[2]).toBeCloseTo(-config.learningRate, 6);
  });
});
