import { describe, it } from 'vitest';
import { dnnlSkipReason, expectAsOnCpu, useDnnlKernels } from './dnnl-test-support.ts';

// The sums of a training step: normalisation statistics over batch and space, per sample, losses over everything.
const CASES = [
  { name: 'batch and space of [64,14,14,32]', x: [64, 14, 14, 32], axis: [0, 1, 2], keepDims: false },
  { name: 'space and channels per sample, kept', x: [16, 14, 14, 32], axis: [1, 2, 3], keepDims: true },
  { name: 'the last axis', x: [8, 7, 7, 64], axis: -1, keepDims: false },
  { name: 'everything', x: [32, 28, 28, 1], axis: [0, 1, 2, 3], keepDims: false },
  { name: 'middle axes, kept', x: [4, 6, 5, 3], axis: [1, 2], keepDims: true },
  { name: 'the first axis of a matrix', x: [64, 100], axis: 0, keepDims: false },
  { name: 'a vector', x: [1000], axis: 0, keepDims: false },
];

describe.skipIf(dnnlSkipReason !== undefined)('Sum in the addon', () => {
  useDnnlKernels();

  it.each(CASES)('$name: as the cpu backend', async ({ x, name: _, ...attrs }) => {
    await expectAsOnCpu('Sum', { x }, attrs);
  });
});
