import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { createUniform } from '../training/random.ts';
import { registerWasmConvKernels, unregisterWasmConvKernels } from './wasm-conv-kernels.ts';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number;

/** Deterministic inputs, so a failure reproduces. */
const seeded = createUniform;

function randomArray(size: number, rand: () => number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rand() * 2 - 1;
  return out;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff / Math.max(norm, 1e-30));
}

interface Arrays {
  x: Float32Array;
  f: Float32Array;
  r: Float32Array;
}

/** Gradients of sum(op(x, f) * r) w.r.t. x and f on the given backend. */
async function gradsOn(
  backend: 'cpu' | 'wasm',
  xShape: Shape4,
  fShape: Shape4,
  arrays: Arrays,
  op: (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D,
): Promise<{ dx: Float32Array; df: Float32Array; y: Float32Array }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor4d(arrays.x, xShape);
    const f = tf.tensor4d(arrays.f, fShape);
    const y = op(x, f);
    const r = tf.tensor(arrays.r, y.shape);
    const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      op(a as tf.Tensor4D, b as tf.Tensor4D)
        .mul(r)
        .sum(),
    )([x, f]);
    return { dx: dx.dataSync() as Float32Array, df: df.dataSync() as Float32Array, y: y.dataSync() as Float32Array };
  });
}

async function compare(xShape: Shape4, fShape: Shape4, yShape: number[], op: (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D, seed: number) {
  const rand = seeded(seed);
  const arrays = { x: randomArray(size(xShape), rand), f: randomArray(size(fShape), rand), r: randomArray(size(yShape), rand) };
  const want = await gradsOn('cpu', xShape, fShape, arrays, op);
  const got = await gradsOn('wasm', xShape, fShape, arrays, op);
  expect(relativeError(got.y, want.y)).toBeLessThan(1e-4);
  expect(relativeError(got.dx, want.dx)).toBeLessThan(1e-4);
  expect(relativeError(got.df, want.df)).toBeLessThan(1e-4);
}

function convOutSize(inSize: number, k: number, s: number, pad: Pad): number {
  if (pad === 'same') return Math.ceil(inSize / s);
  if (pad === 'valid') return Math.floor((inSize - k) / s) + 1;
  return Math.floor((inSize + 2 * pad - k) / s) + 1;
}

interface ConvCase {
  x: Shape4;
  k: [number, number];
  outC: number;
  s: [number, number];
  pad: Pad;
}

const convCases: ConvCase[] = [
  { x: [1, 28, 28, 1], k: [4, 4], outC: 8, s: [2, 2], pad: 'same' },
  { x: [2, 14, 14, 16], k: [4, 4], outC: 32, s: [2, 2], pad: 'same' },
  { x: [4, 7, 7, 64], k: [3, 3], outC: 16, s: [1, 1], pad: 'same' },
  { x: [2, 7, 7, 64], k: [3, 3], outC: 64, s: [2, 2], pad: 'same' },
  { x: [2, 28, 28, 1], k: [5, 5], outC: 64, s: [1, 1], pad: 'same' },
  { x: [3, 13, 11, 3], k: [5, 5], outC: 5, s: [2, 2], pad: 'valid' },
  { x: [1, 15, 15, 5], k: [4, 4], outC: 7, s: [2, 2], pad: 'valid' },
  { x: [2, 9, 9, 8], k: [3, 3], outC: 1, s: [1, 1], pad: 'valid' },
  { x: [3, 10, 12, 16], k: [5, 5], outC: 1, s: [1, 1], pad: 'same' },
  { x: [2, 9, 7, 5], k: [4, 2], outC: 2, s: [1, 1], pad: 'same' },
  { x: [2, 8, 8, 4], k: [3, 3], outC: 2, s: [1, 1], pad: 3 },
  { x: [2, 14, 14, 4], k: [4, 4], outC: 6, s: [1, 1], pad: 'valid' },
  { x: [2, 11, 10, 4], k: [5, 5], outC: 6, s: [3, 3], pad: 'same' },
  { x: [2, 12, 9, 3], k: [3, 4], outC: 5, s: [1, 2], pad: 'same' },
  { x: [2, 12, 12, 3], k: [4, 4], outC: 4, s: [2, 2], pad: 1 },
  { x: [1, 9, 9, 2], k: [3, 3], outC: 3, s: [2, 2], pad: 3 },
];

interface TransposeCase {
  x: Shape4;
  k: [number, number];
  outC: number;
  s: [number, number];
  pad: 'same' | 'valid';
}

const transposeCases: TransposeCase[] = [
  { x: [2, 7, 7, 16], k: [4, 4], outC: 8, s: [2, 2], pad: 'same' },
  { x: [4, 14, 14, 8], k: [4, 4], outC: 1, s: [2, 2], pad: 'same' },
  { x: [1, 5, 6, 3], k: [3, 3], outC: 4, s: [2, 2], pad: 'valid' },
  { x: [3, 7, 7, 32], k: [5, 5], outC: 2, s: [1, 1], pad: 'same' },
  { x: [2, 6, 5, 4], k: [4, 4], outC: 3, s: [1, 1], pad: 'valid' },
];

describe('wasm conv gradient kernels', () => {
  beforeAll(async () => {
    registerWasmConvKernels();
    registerWasmConvKernels();
    expect(await tf.setBackend('wasm')).toBe(true);
  });

  it.each(convCases.map((c, i) => [i, c] as const))('conv2d case %i matches cpu: %o', async (i, c) => {
    const fShape: Shape4 = [c.k[0], c.k[1], c.x[3], c.outC];
    const yShape = [c.x[0], convOutSize(c.x[1], c.k[0], c.s[0], c.pad), convOutSize(c.x[2], c.k[1], c.s[1], c.pad), c.outC];
    const dimRounding = typeof c.pad === 'number' ? 'floor' : undefined;
    await compare(c.x, fShape, yShape, (x, f) => tf.conv2d(x, f, c.s, c.pad, 'NHWC', 1, dimRounding), 100 + i);
  });

  it.each(transposeCases.map((c, i) => [i, c] as const))('conv2dTranspose case %i matches cpu: %o', async (i, c) => {
    const [b, h, w, inC] = c.x;
    const outShape: Shape4 = c.pad === 'same' ? [b, h * c.s[0], w * c.s[1], c.outC] : [b, (h - 1) * c.s[0] + c.k[0], (w - 1) * c.s[1] + c.k[1], c.outC];
    const fShape: Shape4 = [c.k[0], c.k[1], c.outC, inC];
    await compare(c.x, fShape, outShape, (x, f) => tf.conv2dTranspose(x, f, outShape, c.s, c.pad), 200 + i);
  });

  it('leaks no tensors or wasm buffers', async () => {
    await tf.setBackend('wasm');
    const rand = seeded(7);
    const x = tf.tensor4d(randomArray(2 * 14 * 14 * 8, rand), [2, 14, 14, 8]);
    const f = tf.tensor4d(randomArray(4 * 4 * 8 * 16, rand), [4, 4, 8, 16]);
    const step = () => {
      const [dx, df] = tf.grads((a: tf.Tensor, k: tf.Tensor) =>
        tf
          .conv2dTranspose(tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, 2, 'same'), k as tf.Tensor4D, [2, 14, 14, 8], 2, 'same')
          .square()
          .sum(),
      )([x, f]);
      dx.dataSync();
      df.dataSync();
      tf.dispose([dx, df]);
    };
    step();
    const before = tf.memory();
    for (let i = 0; i < 3; i++) step();
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    expect(after.numBytes).toBe(before.numBytes);
    tf.dispose([x, f]);
  });

  it('unregisters back to the built-in kernels and registers again', async () => {
    await tf.setBackend('wasm');
    const ours = tf.getKernel('Conv2DBackpropInput', 'wasm').kernelFunc;
    unregisterWasmConvKernels();
    unregisterWasmConvKernels();
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm').kernelFunc).not.toBe(ours);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    const matMul = tf.getKernel('BatchMatMul', 'wasm').kernelFunc;
    const product = tf.matMul(tf.ones([16, 16]), tf.ones([16, 1024]), true);
    expect(product.dataSync()[0]).toBe(16);
    product.dispose();
    // The built-in kernel still works after the swap.
    const y = tf.conv2dTranspose(tf.ones([1, 2, 2, 1]) as tf.Tensor4D, tf.ones([2, 2, 1, 1]) as tf.Tensor4D, [1, 4, 4, 1], 2, 'same');
    expect(Array.from(y.dataSync())).toEqual(new Array(16).fill(1));
    y.dispose();
    registerWasmConvKernels();
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm').kernelFunc).toBe(ours);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('BatchMatMul', 'wasm').kernelFunc).not.toBe(matMul);
  });

  it.each([
    // G's dense gradients at width 32, latents 64 (cut to 128 columns): dW = a^T dy and dX = dy W^T.
    { a: [64, 64], b: [64, 128], transposeA: true, transposeB: false },
    { a: [64, 128], b: [64, 128], transposeA: false, transposeB: true },
    { a: [64, 40], b: [96, 64], transposeA: true, transposeB: true },
    { a: [3, 32, 64], b: [3, 128, 64], transposeA: false, transposeB: true },
    // Below the threshold (a vector side): wasm's own kernel, transposed.
    { a: [128, 300], b: [128, 1], transposeA: true, transposeB: false },
    { a: [64, 64], b: [64, 128], transposeA: false, transposeB: false },
  ])('matMul of $a by $b (transposed $transposeA, $transposeB) matches cpu', async ({ a, b, transposeA, transposeB }) => {
    const rand = seeded(a.length * 1000 + a[0] + b[1]);
    const [aValues, bValues] = [randomArray(size(a), rand), randomArray(size(b), rand)];
    const product = async (backend: 'cpu' | 'wasm') => {
      await tf.setBackend(backend);
      return tf.tidy(() => tf.matMul(tf.tensor(aValues, a), tf.tensor(bValues, b), transposeA, transposeB).dataSync() as Float32Array);
    };
    const before = (await tf.setBackend('wasm'), tf.memory().numDataBuffers);
    const wasm = await product('wasm');
    expect(tf.memory().numDataBuffers).toBe(before);
    expect(relativeError(wasm, await product('cpu'))).toBeLessThan(1e-5);
  });
});
