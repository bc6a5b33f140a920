import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { getModel } from '../models/registry.ts';
import type { DataShape } from '../models/types.ts';
import { LocalCompute, type ModelRef, type StepRequest } from './compute.ts';

/** The in-thread compute: what it keeps between steps, and how a throttled step is stretched. */

const model: ModelRef = { id: 'dcgan', config: { width: 8, latentDim: 16 } };
const data: DataShape = { imageShape: [28, 28, 1], classes: 10 };
const spec = getModel(model.id);
const weights = spec.createTrainer(spec.parseConfig(model.config), data).initialWeights(1);

function request(throttle = 1): StepRequest {
  const count = 2;
  return {
    model,
    data,
    weightsHash: 'a',
    weights,
    batch: { count, images: new Float32Array(count * 28 * 28).fill(0.5), labels: new Int32Array([0, 1]) },
    seed: 3,
    sampleIndices: [0, 1],
    throttle,
  };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  (tf.findBackend('cpu') as { firstUse?: boolean }).firstUse = false;
});

describe('LocalCompute', () => {
  it('stretches a throttled step by (factor - 1) times its compute, and an unthrottled one not at all', async () => {
    const stretches: number[] = [];
    const compute = new LocalCompute((ms) => void stretches.push(ms));
    await compute.step(request());
    expect(stretches).toEqual([]);
    await compute.step(request(3));
    expect(stretches).toHaveLength(1);
    expect(stretches[0]).toBeGreaterThan(0);
    compute.dispose();
  });

  it('keeps the trainer and the loaded weights while the model and hash stay, and builds anew when the model changes', async () => {
    const compute = new LocalCompute();
    await compute.step(request());
    const trainer = compute.trainer;
    expect(compute.weightsHash).toBe('a');
    await compute.step(request());
    expect(compute.trainer).toBe(trainer);
    await compute.shapes({ ...model, config: { width: 8, latentDim: 8 } }, data);
    expect(compute.trainer).not.toBe(trainer);
    expect(compute.weightsHash).toBe('');
    compute.dispose();
    expect(compute.trainer).toBeUndefined();
  });
});
