import { describe, it } from 'vitest';
import { dnnlSkipReason, expectAsOnCpu, useDnnlKernels } from './dnnl-test-support.ts';

const base = { dataFormat: 'NHWC', dilations: 1 } as const;

// The filter gradients of D's strided convolutions, 3x3 'same' ones, and G's transposed ones (x and dy swap there).
const CASES = [
  { name: "D's 4x4 stride 2 'same'", x: [8, 28, 28, 1], dy: [8, 14, 14, 16], filterShape: [4, 4, 1, 16], strides: 2, pad: 'same' },
  { name: "D's 4x4 stride 2 'same' at 14x14", x: [8, 14, 14, 32], dy: [8, 7, 7, 64], filterShape: [4, 4, 32, 64], strides: 2, pad: 'same' },
  { name: "3x3 stride 1 'same'", x: [8, 7, 7, 32], dy: [8, 7, 7, 32], filterShape: [3, 3, 32, 32], strides: 1, pad: 'same' },
  { name: "G's 4x4 stride 2 transposed", x: [8, 14, 14, 16], dy: [8, 7, 7, 32], filterShape: [4, 4, 16, 32], strides: 2, pad: 'same' },
  { name: "'valid' stride 2 with a remainder", x: [4, 9, 10, 3], dy: [4, 4, 5, 5], filterShape: [3, 2, 3, 5], strides: 2, pad: 'valid' },
];

describe.skipIf(dnnlSkipReason !== undefined)('Conv2DBackpropFilter in oneDNN', () => {
  useDnnlKernels();

  it.each(CASES)('$name: as the cpu backend', async ({ x, dy, name: _, ...attrs }) => {
    await expectAsOnCpu('Conv2DBackpropFilter', { x, dy }, { ...base, ...attrs });
  });
});
