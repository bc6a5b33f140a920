import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { relativeError } from '../trainer-contract.ts';
import { powerIteration, SpectralConv2D, SpectralDense, spectralNormalize } from './spectral-norm.ts';

/** The largest singular value of `kernel` as a [fan-in, units] matrix, by 500 power iterations in float64. */
function largestSingularValue(kernel: tf.Tensor): number {
  const units = kernel.shape[kernel.rank - 1];
  const values = kernel.dataSync();
  const rows = values.length / units;
  let v = Array.from({ length: units }, (_, i) => 1 + i / units);
  let sigma = 0;
  for (let iteration = 0; iteration < 500; iteration++) {
    const u = Array.from({ length: rows }, (_, r) => v.reduce((sum, vj, j) => sum + values[r * units + j] * vj, 0));
    const next = Array.from({ length: units }, (_, j) => u.reduce((sum, ur, r) => sum + values[r * units + j] * ur, 0));
    const norm = Math.hypot(...next);
    sigma = Math.sqrt(norm);
    v = next.map((value) => value / norm);
  }
  return sigma;
}

/** A [fan-in, units] kernel with a clear top singular value (a rank-one spike on noise), as trained kernels have. */
function spikedKernel(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => {
    const units = shape[shape.length - 1];
    const rows = shape.reduce((a, b) => a * b, 1) / units;
    const spike = tf.matMul(tf.randomNormal([rows, 1], 0, 1, 'float32', seed), tf.randomNormal([1, units], 0, 1, 'float32', seed + 1));
    return tf.reshape(tf.add(tf.mul(spike, 0.3), tf.randomNormal([rows, units], 0, 0.05, 'float32', seed + 2)), shape);
  });
}

describe('spectralNormalize', () => {
  it('divides the kernel by its largest singular value, estimated from below', () => {
    const kernel = spikedKernel([4, 4, 8, 16], 1);
    const sigma = largestSingularValue(kernel);
    for (const iterations of [1, 5]) {
      const normalized = spectralNormalize(kernel, iterations);
      const after = largestSingularValue(normalized);
      // The estimate never exceeds the true value, so the result's top singular value is at least 1.
      expect(after).toBeGreaterThanOrEqual(1 - 1e-4);
      expect(after).toBeLessThan(1.01);
      tf.dispose(normalized);
    }
    expect(sigma).toBeGreaterThan(1);
    tf.dispose(kernel);
  });

  it('computes the same from the same kernel: no state between calls', () => {
    const kernel = spikedKernel([12, 5], 4);
    const [first, second] = [0, 1].map(() => spectralNormalize(kernel, 3));
    expect(Array.from(second.dataSync())).toEqual(Array.from(first.dataSync()));
    tf.dispose([kernel, first, second]);
  });

  it("has the paper's gradient: W / (u'Wv) differentiated with u and v held constant", () => {
    const kernel = spikedKernel([3, 3, 4, 6], 7);
    const upstream = tf.randomNormal([3, 3, 4, 6], 0, 1, 'float32', 9);
    const ours = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(spectralNormalize(w, 4), upstream)))(kernel);
    // The reference closes over the estimate's u and v, so autodiff treats them as constants.
    const { u, v, sigma } = powerIteration(kernel, 4);
    const reference = tf.grad((w: tf.Tensor) => {
      const estimate = tf.sum(tf.mul(u, tf.matMul(tf.reshape(w, [-1, 6]) as tf.Tensor2D, v)));
      return tf.sum(tf.mul(tf.div(w, estimate), upstream));
    })(kernel);
    expect(relativeError(ours.dataSync() as Float32Array, reference.dataSync() as Float32Array)).toBeLessThan(1e-5);
    // The forward value is the kernel over that same estimate.
    const normalized = spectralNormalize(kernel, 4);
    const expected = tf.div(kernel, sigma);
    expect(relativeError(normalized.dataSync() as Float32Array, expected.dataSync() as Float32Array)).toBeLessThan(1e-6);
    tf.dispose([kernel, upstream, ours, u, v, sigma, reference, normalized, expected]);
  });

  it('keeps an all-zero kernel finite', () => {
    const zero = tf.zeros([5, 3]);
    const normalized = spectralNormalize(zero, 2);
    expect(normalized.dataSync().every(Number.isFinite)).toBe(true);
    tf.dispose([zero, normalized]);
  });
});

describe('SpectralConv2D and SpectralDense', () => {
  it('compute the plain layer with the normalized kernel, under the scoped weight names', () => {
    const images = tf.input({ shape: [8, 8, 2] });
    const conv = new SpectralConv2D({
      name: 'd_conv',
      units: 3,
      kernelSize: 4,
      strides: 2,
      padding: 'same',
      iterations: 2,
      kernelInitializer: tf.initializers.randomNormal({ stddev: 0.5, seed: 1 }),
    });
    const flat = tf.layers.flatten().apply(conv.apply(images) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const dense = new SpectralDense({
      name: 'd_head',
      units: 2,
      iterations: 2,
      useBias: false,
      kernelInitializer: tf.initializers.randomNormal({ stddev: 0.5, seed: 2 }),
    });
    const model = tf.model({ inputs: images, outputs: dense.apply(flat) as tf.SymbolicTensor });
    expect(model.trainableWeights.map((weight) => [weight.originalName, weight.shape])).toEqual([
      ['d_conv/kernel', [4, 4, 2, 3]],
      ['d_conv/bias', [3]],
      ['d_head/kernel', [48, 2]],
    ]);
    const [convKernel, convBias, denseKernel] = model.trainableWeights.map((weight) => weight.read());
    (convBias as tf.Variable).assign(tf.tensor1d([0.1, -0.2, 0.3]));
    const x = tf.randomNormal([2, 8, 8, 2], 0, 1, 'float32', 3);
    const actual = model.predict(x) as tf.Tensor;
    const expected = tf.tidy(() => {
      const hidden = tf.add(tf.conv2d(x as tf.Tensor4D, tf.div(convKernel, powerIteration(convKernel, 2).sigma) as tf.Tensor4D, 2, 'same'), convBias);
      return tf.matMul(tf.reshape(hidden, [2, 48]) as tf.Tensor2D, tf.div(denseKernel, powerIteration(denseKernel, 2).sigma) as tf.Tensor2D);
    });
    expect(relativeError(actual.dataSync() as Float32Array, expected.dataSync() as Float32Array)).toBeLessThan(1e-6);
    tf.dispose([x, actual, expected]);
    model.dispose();
  });
});
