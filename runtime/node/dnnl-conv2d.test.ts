import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { dnnlCalls } from './dnnl-kernels.ts';
import { dnnlSkipReason, expectAsOnCpu, useDnnlKernels } from './dnnl-test-support.ts';

const conv = { dataFormat: 'NHWC', dilations: 1 } as const;

// The models' forward convolutions: D's strided ones, 3x3 'same' ones, and what tfjs allows besides.
const CONV2D = [
  { name: "D's 4x4 stride 2 'same'", x: [8, 28, 28, 1], filter: [4, 4, 1, 16], attrs: { strides: 2, pad: 'same' } },
  { name: "D's 4x4 stride 2 'same' at 14x14", x: [8, 14, 14, 32], filter: [4, 4, 32, 64], attrs: { strides: 2, pad: 'same' } },
  { name: "3x3 stride 1 'same' at 7x7", x: [8, 7, 7, 32], filter: [3, 3, 32, 32], attrs: { strides: 1, pad: 'same' } },
  { name: "'valid', stride 2 with a remainder", x: [4, 9, 10, 3], filter: [3, 2, 3, 5], attrs: { strides: 2, pad: 'valid' } },
  {
    name: 'explicit pads',
    x: [2, 8, 8, 4],
    filter: [3, 3, 4, 4],
    attrs: {
      strides: 1,
      pad: [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    },
  },
  { name: 'dilated 3x3', x: [2, 12, 12, 4], filter: [3, 3, 4, 6], attrs: { strides: 1, pad: 'same', dilations: 2 } },
];

const FUSED = [
  { name: 'bias, no activation', activation: 'linear' },
  { name: 'bias and relu', activation: 'relu' },
  { name: 'bias and leaky relu 0.1', activation: 'leakyrelu', leakyreluAlpha: 0.1 },
];

describe.skipIf(dnnlSkipReason !== undefined)('Conv2D and FusedConv2D in oneDNN', () => {
  useDnnlKernels();

  it.each(CONV2D)('Conv2D, $name: as the cpu backend', async (c) => {
    await expectAsOnCpu('Conv2D', { x: c.x, filter: c.filter }, { ...conv, ...c.attrs });
  });

  it.each(FUSED)('FusedConv2D 3x3 with $name: as the cpu backend', async ({ name: _, ...fused }) => {
    const attrs = { ...conv, strides: 1, pad: 'same', ...fused };
    await expectAsOnCpu('FusedConv2D', { x: [4, 14, 14, 8], filter: [3, 3, 8, 16], bias: [16] }, attrs);
  });

  it('passes a prelu activation on to the kernel it replaced', async () => {
    await tf.setBackend('wasm');
    const [x, filter, alpha] = [tf.ones([1, 5, 5, 2]), tf.ones([3, 3, 2, 2]), tf.scalar(0.5)];
    const passedOn = dnnlCalls.passedOn;
    const y = tf.fused.conv2d({
      x: x as tf.Tensor4D,
      filter: filter as tf.Tensor4D,
      strides: 1,
      pad: 'same',
      activation: 'prelu',
      preluActivationWeights: alpha,
    });
    expect(dnnlCalls.passedOn).toBe(passedOn + 1);
    expect(y.dataSync()[0]).toBe(8);
    tf.dispose([x, filter, alpha, y]);
  });
});
