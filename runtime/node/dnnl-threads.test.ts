import { afterAll, describe, expect, it } from 'vitest';
import { getModel } from '../../shared/models/registry.ts';
import type { DataShape } from '../../shared/models/types.ts';
import type { ModelRef, StepRequest } from '../../shared/worker/compute.ts';
import { startComputeThread, type ThreadCompute } from './compute-thread.ts';
import { dnnlUnavailable } from './dnnl-addon.ts';

/**
 * Two threads of one process calling the addon at once (the coordinator's
 * main thread draws sample grids while its scoring thread scores): each
 * thread keeps its own plans and scratch buffers, so both compute what one
 * thread alone does. With shared plans, two calls of one shape would share
 * a reorder buffer.
 */

const why = dnnlUnavailable();
const model: ModelRef = { id: 'dcgan', config: { width: 16, latentDim: 16 } };
const data: DataShape = { imageShape: [28, 28, 1], classes: 10 };
const spec = getModel(model.id);
const threads: ThreadCompute[] = [];
afterAll(() => threads.forEach((thread) => thread.dispose()));

function request(seed: number): StepRequest {
  const count = 32;
  return {
    model,
    data,
    weightsHash: 'a',
    weights: spec.createTrainer(spec.parseConfig(model.config), data).initialWeights(5),
    batch: {
      count,
      images: new Float32Array(count * 28 * 28).map((_, i) => ((i * seed) % 31) / 31),
      labels: Int32Array.from({ length: count }, (_, i) => i % 10),
    },
    seed,
    sampleIndices: Array.from({ length: count }, (_, i) => i),
    throttle: 1,
  };
}

describe.skipIf(why !== undefined)('the oneDNN addon in two threads of one process', () => {
  it('gives each thread what it computes alone, with both stepping at once', async () => {
    const [one, two] = await Promise.all([startComputeThread({ backend: 'wasm' }), startComputeThread({ backend: 'wasm' })]);
    threads.push(one, two);
    const alone = [await one.step(request(3)), await two.step(request(7))];
    for (let k = 0; k < 4; k++) {
      const together = await Promise.all([one.step(request(3)), two.step(request(7))]);
      for (const [side, result] of together.entries()) {
        for (const name of Object.keys(result.grads)) expect(result.grads[name], `${side} ${name}`).toEqual(alone[side].grads[name]);
      }
    }
  });
});
