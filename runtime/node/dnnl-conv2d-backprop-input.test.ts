import { describe, it } from 'vitest';
import { dnnlSkipReason, expectAsOnCpu, useDnnlKernels } from './dnnl-test-support.ts';

const base = { dataFormat: 'NHWC', dilations: 1 } as const;

// G's transposed convolutions (their forward pass is this kernel) and the input gradients of D's convolutions.
const CASES = [
  { name: "G's 4x4 stride 2 transposed conv, 7x7 to 14x14", dy: [8, 7, 7, 32], filter: [4, 4, 16, 32], inputShape: [8, 14, 14, 16], strides: 2, pad: 'same' },
  { name: "G's 4x4 stride 2 transposed conv, 14x14 to 28x28", dy: [8, 14, 14, 16], filter: [4, 4, 1, 16], inputShape: [8, 28, 28, 1], strides: 2, pad: 'same' },
  { name: "a 3x3 stride 1 'same' conv's", dy: [8, 7, 7, 32], filter: [3, 3, 32, 32], inputShape: [8, 7, 7, 32], strides: 1, pad: 'same' },
  { name: "a 'valid' stride 2 conv's, with a remainder", dy: [4, 4, 5, 5], filter: [3, 2, 3, 5], inputShape: [4, 9, 10, 3], strides: 2, pad: 'valid' },
];

describe.skipIf(dnnlSkipReason !== undefined)('Conv2DBackpropInput in oneDNN', () => {
  useDnnlKernels();

  it.each(CASES)('$name: as the cpu backend', async ({ dy, filter, name: _, ...attrs }) => {
    await expectAsOnCpu('Conv2DBackpropInput', { dy, filter }, { ...base, ...attrs });
  });
});
