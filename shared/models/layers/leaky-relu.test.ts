import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { relativeError } from '../trainer-contract.ts';
import { FastLeakyReLU, leakyRelu } from './leaky-relu.ts';

describe('leakyRelu', () => {
  it("computes tfjs's leakyRelu and its gradient", () => {
    const x = tf.randomNormal([4, 6, 6, 3], 0, 1, 'float32', 1);
    const upstream = tf.randomNormal([4, 6, 6, 3], 0, 1, 'float32', 2);
    for (const alpha of [0, 0.2, 1]) {
      const [ours, stock] = [leakyRelu(x, alpha), tf.leakyRelu(x, alpha)];
      expect(relativeError(ours.dataSync() as Float32Array, stock.dataSync() as Float32Array), `alpha ${alpha}`).toBeLessThan(1e-6);
      const loss = (f: (input: tf.Tensor) => tf.Tensor) => (input: tf.Tensor) => tf.sum(tf.mul(f(input), upstream));
      const oursGrad = tf.grad(loss((input) => leakyRelu(input, alpha)))(x);
      const stockGrad = tf.grad(loss((input) => tf.leakyRelu(input, alpha)))(x);
      expect(relativeError(oursGrad.dataSync() as Float32Array, stockGrad.dataSync() as Float32Array), `alpha ${alpha}`).toBeLessThan(1e-6);
      tf.dispose([ours, stock, oursGrad, stockGrad]);
    }
    tf.dispose([x, upstream]);
  });
});

describe('FastLeakyReLU', () => {
  it('survives serialization: a model rebuilt from its JSON predicts the same', async () => {
    const input = tf.input({ shape: [5] });
    const model = tf.model({ inputs: input, outputs: new FastLeakyReLU({ name: 'act', alpha: 0.3 }).apply(input) as tf.SymbolicTensor });
    const rebuilt = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] });
    const x = tf.tensor2d([[-2, -0.5, 0, 0.5, 2]]);
    const [expected, actual] = [model, rebuilt].map((m) => m.predict(x) as tf.Tensor);
    expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
    expect(Array.from(expected.dataSync())).toEqual([-0.6000000238418579, -0.15000000596046448, 0, 0.5, 2]);
    tf.dispose([x, expected, actual]);
    model.dispose();
    rebuilt.dispose();
  });

  it('refuses a slope outside [0, 1]', () => {
    expect(() => new FastLeakyReLU({ name: 'act', alpha: -1 })).toThrow(/alpha/);
  });
});
