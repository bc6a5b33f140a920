import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getModel } from '../../shared/models/registry.ts';
import type { DataShape } from '../../shared/models/types.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { LocalCompute, type ModelRef, type StepRequest } from '../../shared/worker/compute.ts';
import { startComputeThread, type ThreadCompute } from './compute-thread.ts';

/**
 * The compute thread against the same compute in this thread: one real dcgan
 * step on the cpu backend (deterministic) gives the same gradients and losses
 * both ways, errors keep their code, and the thread ends when disposed.
 */

const model: ModelRef = { id: 'dcgan', config: { width: 8, latentDim: 16 } };
const data: DataShape = { imageShape: [28, 28, 1], classes: 10 };
const spec = getModel(model.id);

function request(weightsHash: string, weights: StepRequest['weights']): StepRequest {
  const count = 4;
  return {
    model,
    data,
    weightsHash,
    weights,
    batch: { count, images: new Float32Array(count * 28 * 28).map((_, i) => (i % 29) / 29), labels: new Int32Array([0, 1, 2, 3]) },
    seed: 7,
    sampleIndices: [10, 11, 12, 13],
    throttle: 1,
  };
}

let thread: ThreadCompute;
beforeAll(async () => {
  await tf.setBackend('cpu');
  // The cpu backend's "install tfjs-node" advice: this test chose it.
  (tf.findBackend('cpu') as { firstUse?: boolean }).firstUse = false;
  thread = await startComputeThread({ backend: 'cpu' });
}, 30_000);
afterAll(() => thread?.dispose());

describe('the compute thread', () => {
  it('reports the backend it computes on', () => {
    expect(thread.backend.name).toBe('cpu');
    expect(thread.backend.device).toMatch(/cpu/);
  });

  it('computes the step this thread computes: same shapes, gradients and losses, at the same and at new weights', async () => {
    const local = new LocalCompute();
    const shapes = await thread.shapes(model, data);
    expect(shapes).toEqual(await local.shapes(model, data));
    const first = spec.createTrainer(spec.parseConfig(model.config), data).initialWeights(1);
    const second = spec.createTrainer(spec.parseConfig(model.config), data).initialWeights(2);
    // The second step at the same hash goes without weights (the thread holds them): its result must not change.
    for (const [hash, weights] of [
      ['a', first],
      ['a', first],
      ['b', second],
    ] as const) {
      const expected = await local.step(request(hash, weights));
      const actual = await thread.step(request(hash, weights));
      expect(Object.keys(actual.grads)).toEqual(Object.keys(expected.grads));
      for (const name of Object.keys(expected.grads)) expect(actual.grads[name]).toEqual(expected.grads[name]);
      expect(actual.losses).toEqual(expected.losses);
    }
    local.dispose();
  }, 60_000);

  it("passes on the thread's errors with their code and field", async () => {
    const refused = thread.shapes({ id: 'no-such-model', config: {} }, data);
    await expect(refused).rejects.toBeInstanceOf(TesseraError);
    await expect(refused).rejects.toMatchObject({
      code: ErrorCode.UnknownModel,
      field: 'model.id',
      message: expect.stringMatching(/^unknown model "no-such-model"/),
    });
    const { message } = (await refused.catch((error: unknown) => error)) as Error;
    expect(message.match(/field: model\.id/g)).toHaveLength(1);
  });

  it('refuses to start with an unknown backend, naming it', async () => {
    await expect(startComputeThread({ backend: 'abacus' })).rejects.toThrow(/unknown backend "abacus"/);
  }, 30_000);

  it('refuses calls once disposed', async () => {
    const other = await startComputeThread({ backend: 'cpu' });
    other.dispose();
    await expect(other.shapes(model, data)).rejects.toMatchObject({ code: ErrorCode.Internal });
  }, 30_000);
});
