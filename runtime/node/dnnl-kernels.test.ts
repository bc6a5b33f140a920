import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { dnnlCalls } from './dnnl-kernels.ts';
import { dnnlSkipReason, relativeError, useDnnlKernels, values } from './dnnl-test-support.ts';

type Shape4 = [number, number, number, number];
type Case = {
  name: string;
  x: Shape4;
  f: Shape4;
  op: (x: tf.Tensor4D, f: tf.Tensor4D, bias: tf.Tensor1D) => tf.Tensor4D;
  /** What the gradients are taken for (tfjs has no gradient of a dilated conv; a bias only where the op adds one). */
  wrt: ('x' | 'f' | 'bias')[];
};

/** The op's output and the gradients of sum(op · r) for c.wrt, on one backend. */
async function run(backend: string, c: Case): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const inputs = {
      x: tf.tensor4d(
        values(
          c.x.reduce((a, b) => a * b),
          1,
        ),
        c.x,
      ),
      f: tf.tensor4d(
        values(
          c.f.reduce((a, b) => a * b),
          2,
        ),
        c.f,
      ),
      bias: tf.tensor1d(values(c.f[3], 3)),
    };
    const y = c.op(inputs.x, inputs.f, inputs.bias);
    const r = tf.tensor(values(y.size, 4), y.shape);
    const loss = (...taken: tf.Tensor[]) => {
      const given = { ...inputs, ...Object.fromEntries(c.wrt.map((name, k) => [name, taken[k]])) };
      return c
        .op(given.x as tf.Tensor4D, given.f as tf.Tensor4D, given.bias as tf.Tensor1D)
        .mul(r)
        .sum();
    };
    const grads = c.wrt.length > 0 ? tf.grads(loss)(c.wrt.map((name) => inputs[name])) : [];
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

// The models' convolutions: D's strided ones, G's transposed ones, the U-Net's 3x3 'same' ones with bias and activation.
const CASES: Case[] = [
  { name: "D's 4x4 stride 2 'same'", x: [8, 28, 28, 1], f: [4, 4, 1, 16], op: (x, f) => tf.conv2d(x, f, 2, 'same'), wrt: ['x', 'f'] },
  { name: "D's 3x3 stride 1 at 7x7", x: [8, 7, 7, 32], f: [3, 3, 32, 32], op: (x, f) => tf.conv2d(x, f, 1, 'same'), wrt: ['x', 'f'] },
  { name: "a 'valid' conv with a remainder", x: [4, 9, 10, 3], f: [3, 2, 3, 5], op: (x, f) => tf.conv2d(x, f, 2, 'valid'), wrt: ['x', 'f'] },
  { name: 'a dilated conv (forward)', x: [2, 12, 12, 4], f: [3, 3, 4, 6], op: (x, f) => tf.conv2d(x, f, 1, 'same', 'NHWC', 2), wrt: [] },
  {
    name: "G's 4x4 transposed conv, stride 2",
    x: [8, 7, 7, 32],
    f: [4, 4, 16, 32],
    op: (x, f) => tf.conv2dTranspose(x, f, [x.shape[0], x.shape[1] * 2, x.shape[2] * 2, f.shape[2]], 2, 'same'),
    wrt: ['x', 'f'],
  },
  {
    name: 'a fused 3x3 conv with bias and relu',
    x: [4, 14, 14, 8],
    f: [3, 3, 8, 16],
    op: (x, f, bias) => tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'same', bias, activation: 'relu' }),
    wrt: ['x', 'f', 'bias'],
  },
  {
    name: 'a fused conv with bias and leaky relu',
    x: [4, 14, 14, 8],
    f: [3, 3, 8, 16],
    op: (x, f, bias) => tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'same', bias, activation: 'leakyrelu', leakyreluAlpha: 0.1 }),
    wrt: ['x', 'f', 'bias'],
  },
];

// Each kernel is checked alone in its own test file; here the ops the models call, with their gradients, end to end.
describe.skipIf(dnnlSkipReason !== undefined)('oneDNN convolutions for the wasm backend', () => {
  useDnnlKernels();

  it.each(CASES)('$name: output and gradients as the cpu backend gives them', async (c) => {
    const expected = await run('cpu', c);
    const before = { ...dnnlCalls };
    const got = await run('wasm', c);
    // Everything ran in the addon: the forward; under tf.grads the forward again and the loss's Sum; one kernel per
    // gradient (a convolution's for x and f, a Sum for the bias).
    expect(dnnlCalls.native - before.native).toBe(1 + (c.wrt.length > 0 ? 2 : 0) + c.wrt.length);
    expect(dnnlCalls.passedOn).toBe(before.passedOn);
    for (const [k, name] of ['y', ...c.wrt].entries()) expect(relativeError(got[k], expected[k]), name).toBeLessThan(1e-5);
  });

  it('leaves what it does not take (an NCHW conv is refused by wasm itself) to the kernel it replaced', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 2, 5, 5]) as tf.Tensor4D;
    const f = tf.zeros([3, 3, 2, 2]) as tf.Tensor4D;
    const passedOn = dnnlCalls.passedOn;
    expect(() => tf.conv2d(x, f, 1, 'same', 'NCHW')).toThrow(/channelsLast/);
    expect(dnnlCalls.passedOn).toBe(passedOn + 1);
    tf.dispose([x, f]);
  });
});
