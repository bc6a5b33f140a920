import { afterAll, describe, expect, it } from 'vitest';
import { getModel } from '../../shared/models/registry.ts';
import type { DataShape } from '../../shared/models/types.ts';
import type { ModelRef, StepRequest } from '../../shared/worker/compute.ts';
import { startComputeThread, type ThreadCompute } from './compute-thread.ts';
import { MAX_WASM_THREADS, threadsPerWorker } from './wasm-threads.ts';

/**
 * The threaded SIMD build of tfjs-wasm in Node, each in a compute thread of
 * its own (tfjs backends are per thread): with 2 threads it reports 2 and
 * computes what the one-thread build computes.
 */

const model: ModelRef = { id: 'dcgan', config: { width: 16, latentDim: 16 } };
const data: DataShape = { imageShape: [28, 28, 1], classes: 10 };
const spec = getModel(model.id);
const threads: ThreadCompute[] = [];
afterAll(() => threads.forEach((thread) => thread.dispose()));

function request(): StepRequest {
  const count = 8;
  return {
    model,
    data,
    weightsHash: 'a',
    weights: spec.createTrainer(spec.parseConfig(model.config), data).initialWeights(5),
    batch: { count, images: new Float32Array(count * 28 * 28).map((_, i) => (i % 31) / 31), labels: Int32Array.from({ length: count }, (_, i) => i) },
    seed: 11,
    sampleIndices: Array.from({ length: count }, (_, i) => i),
    throttle: 1,
  };
}

describe('tfjs-wasm with threads in Node', () => {
  it('runs the threaded build with 2 threads, reports them, and computes what one thread computes', async () => {
    const one = await startComputeThread({ backend: 'wasm', wasmThreads: 1 });
    const two = await startComputeThread({ backend: 'wasm', wasmThreads: 2 });
    threads.push(one, two);
    expect(one.backend.device).toMatch(/wasm, 1 thread[,)]/);
    expect(two.backend.device).toMatch(/wasm, 2 threads[,)]/);
    const expected = await one.step(request());
    const actual = await two.step(request());
    for (const name of Object.keys(expected.grads)) {
      const scale = Math.max(...expected.grads[name].map(Math.abs), 1e-12);
      const largest = Math.max(...actual.grads[name].map((value, i) => Math.abs(value - expected.grads[name][i])));
      expect(largest / scale, name).toBeLessThan(1e-4);
    }
    for (const [name, loss] of Object.entries(expected.losses)) expect(actual.losses[name]).toBeCloseTo(loss, 5);
  }, 60_000);

  it('refuses a thread count the build cannot take, naming it', async () => {
    await expect(startComputeThread({ backend: 'wasm', wasmThreads: MAX_WASM_THREADS + 1 })).rejects.toThrow(
      /wasm threads must be an integer from 1 to 8, got 9/,
    );
  }, 30_000);

  it('shares the cores out among local workers: none oversubscribed, at least one thread each, at most the build takes', () => {
    expect(threadsPerWorker(2, 2)).toBe(1);
    expect(threadsPerWorker(8, 2)).toBe(4);
    expect(threadsPerWorker(7, 2)).toBe(3);
    expect(threadsPerWorker(2, 4)).toBe(1);
    expect(threadsPerWorker(64, 2)).toBe(MAX_WASM_THREADS);
    expect(threadsPerWorker(4, 0)).toBe(4);
  });
});
