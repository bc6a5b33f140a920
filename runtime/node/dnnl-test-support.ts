import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, expect } from 'vitest';
import { createUniform } from '../../shared/training/random.ts';
import { registerWasmConvKernels } from '../../shared/tfjs/wasm-conv-kernels.ts';
import { dnnlCalls, dnnlUnavailable, registerDnnlKernels, unregisterDnnlKernels } from './dnnl-kernels.ts';
import { relativeError as admissionRelativeError } from '../../shared/models/admission.ts';

/*
 * What the oneDNN kernels' tests share: whether they can run, the kernels
 * registered for a suite, seeded inputs, and one kernel run on tf's cpu
 * backend and on wasm.
 */

/** Why the oneDNN kernels are not tested here (printed once), or undefined. */
export const dnnlSkipReason = dnnlUnavailable();
if (dnnlSkipReason) console.log(`oneDNN kernels not tested: ${dnnlSkipReason}`);

/** Registers the project's wasm kernels, then the oneDNN ones over them, for the suite it is called in. */
export function useDnnlKernels(): void {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    registerWasmConvKernels();
    expect(registerDnnlKernels(1)).toBeUndefined();
  });
  afterAll(() => unregisterDnnlKernels());
}

/** Deterministic values in [-1, 1). */
export function values(size: number, seed: number): Float32Array {
  const uniform = createUniform(seed);
  return Float32Array.from({ length: size }, () => uniform() * 2 - 1);
}

/** ||a - b|| / ||b|| (admission's), the lengths checked first. */
export function relativeError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return admissionRelativeError(a, b);
}

async function runKernel(backend: string, name: string, shapes: Record<string, number[]>, attrs: Record<string, unknown>) {
  await tf.setBackend(backend);
  const inputs = Object.fromEntries(
    Object.entries(shapes).map(([input, shape], k) => [
      input,
      tf.tensor(
        values(
          shape.reduce((a, b) => a * b, 1),
          k + 1,
        ),
        shape,
      ),
    ]),
  );
  const out = tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
  const data = (await out.data()) as Float32Array;
  tf.dispose([out, ...Object.values(inputs)]);
  return { data, shape: out.shape };
}

/**
 * Runs kernel `name` on seeded inputs of `shapes` on the cpu backend and on
 * wasm, and checks wasm's ran in oneDNN (not passed on) and agrees.
 */
export async function expectAsOnCpu(name: string, shapes: Record<string, number[]>, attrs: Record<string, unknown>): Promise<void> {
  const expected = await runKernel('cpu', name, shapes, attrs);
  const before = { ...dnnlCalls };
  const got = await runKernel('wasm', name, shapes, attrs);
  expect(dnnlCalls.native - before.native, 'convolutions run in oneDNN').toBe(1);
  expect(dnnlCalls.passedOn - before.passedOn, 'calls passed on').toBe(0);
  expect(got.shape).toEqual(expected.shape);
  expect(relativeError(got.data, expected.data)).toBeLessThan(1e-5);
}
