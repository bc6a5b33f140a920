import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { relativeError } from '../trainer-contract.ts';
import { exampleNorm, ExampleNormalization, type ExampleNormMode } from './example-norm.ts';

/** The same normalization in plain tfjs ops, differentiated by tfjs's autodiff: the reference for the hand-written gradient. */
function naive(x: tf.Tensor, mode: ExampleNormMode, epsilon: number): tf.Tensor {
  const axes = mode === 'pixel' ? [x.rank - 1] : Array.from({ length: x.rank - 1 }, (_, i) => i + 1);
  const centered = mode === 'layer' ? tf.sub(x, tf.mean(x, axes, true)) : x;
  return tf.div(centered, tf.sqrt(tf.add(tf.mean(tf.square(centered), axes, true), epsilon)));
}

const MODES: ExampleNormMode[] = ['pixel', 'layer'];

describe.each(MODES)('exampleNorm, %s mode', (mode) => {
  const x = tf.randomNormal([3, 5, 4, 6], 0.7, 2, 'float32', 1);
  // A fixed upstream gradient that is not uniform, so every term of the gradient matters.
  const upstream = tf.randomNormal([3, 5, 4, 6], 0, 1, 'float32', 2);
  afterAll(() => tf.dispose([x, upstream]));

  it('normalizes each example by its own statistics', () => {
    const y = exampleNorm(x, mode, 1e-8);
    const axes = mode === 'pixel' ? [3] : [1, 2, 3];
    const meanSquare = tf.mean(tf.square(y), axes).dataSync();
    for (const value of meanSquare) expect(value).toBeCloseTo(1, 4);
    if (mode === 'layer') for (const value of tf.mean(y, axes).dataSync()) expect(Math.abs(value)).toBeLessThan(1e-5);
    tf.dispose(y);
  });

  it("has the gradient tfjs's autodiff finds for the plain formula", () => {
    const loss = (f: (input: tf.Tensor) => tf.Tensor) => (input: tf.Tensor) => tf.sum(tf.mul(f(input), upstream));
    const ours = tf.grad(loss((input) => exampleNorm(input, mode, 1e-5)))(x);
    const reference = tf.grad(loss((input) => naive(input, mode, 1e-5)))(x);
    expect(relativeError(ours.dataSync() as Float32Array, reference.dataSync() as Float32Array)).toBeLessThan(1e-5);
    tf.dispose([ours, reference]);
  });

  it("leaves each example's output and gradient independent of the other examples", () => {
    const other = tf.concat([tf.slice(x, [0], [1]), tf.mul(tf.slice(x, [1], [2]), -3)]);
    const loss = (input: tf.Tensor) => tf.sum(tf.mul(exampleNorm(input, mode, 1e-8), upstream));
    const [first, second] = [x, other].map((input) => tf.slice(tf.grad(loss)(input), [0], [1]).dataSync() as Float32Array);
    expect(relativeError(second, first)).toBeLessThan(1e-6);
    tf.dispose(other);
  });
});

describe('ExampleNormalization', () => {
  it('learns a gain and bias per channel in layer mode, none in pixel mode', () => {
    const build = (mode: ExampleNormMode, affine: boolean) => {
      const input = tf.input({ shape: [7, 7, 4] });
      const output = new ExampleNormalization({ name: `norm_${mode}`, mode, affine }).apply(input) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: output });
    };
    const layer = build('layer', true);
    const pixel = build('pixel', false);
    expect(layer.trainableWeights.map((weight) => [weight.originalName, weight.shape])).toEqual([
      ['norm_layer/gain', [4]],
      ['norm_layer/bias', [4]],
    ]);
    expect(pixel.trainableWeights).toEqual([]);
    layer.dispose();
    pixel.dispose();
  });

  it('survives serialization: a model rebuilt from its JSON predicts the same', async () => {
    const input = tf.input({ shape: [3, 3, 2] });
    const output = new ExampleNormalization({ name: 'norm', mode: 'layer', affine: true }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    model.setWeights([tf.tensor1d([2, 3]), tf.tensor1d([0.5, -1])]);
    const rebuilt = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] });
    rebuilt.setWeights(model.getWeights());
    const x = tf.randomNormal([2, 3, 3, 2], 0, 1, 'float32', 3);
    const [expected, actual] = [model, rebuilt].map((m) => m.predict(x) as tf.Tensor);
    expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([x, expected, actual]);
    model.dispose();
    rebuilt.dispose();
  });

  it('refuses an unknown mode, naming it', () => {
    expect(() => new ExampleNormalization({ name: 'bad', mode: 'batch' as ExampleNormMode })).toThrow(/'batch'|batch/);
  });
});
