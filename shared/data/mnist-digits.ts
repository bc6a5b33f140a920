import { InMemoryDataset } from './dataset.ts';

/** One digit's images as the `mnist` package stores them: `length` images of 28x28 pixels in [0, 1], one after another. */
export interface MnistDigit {
  id: number;
  raw: readonly number[];
  length: number;
}

const IMAGE_SIZE = 28 * 28;

/**
 * The `mnist` package's digits as one dataset, in the package's order (digit
 * by digit, as stored), so every process agrees on what index i is. Pure: the
 * package itself is loaded by shared/data/mnist.ts, or read from a binary
 * cache by the Node runtime (runtime/node/mnist.ts).
 */
export function mnistFromDigits(digits: readonly MnistDigit[]): InMemoryDataset {
  const count = digits.reduce((sum, digit) => sum + digit.length, 0);
  const images = new Float32Array(count * IMAGE_SIZE);
  const labels = new Int32Array(count);
  let offset = 0;
  for (const digit of digits) {
    images.set(digit.raw.slice(0, digit.length * IMAGE_SIZE), offset * IMAGE_SIZE);
    labels.fill(digit.id, offset, offset + digit.length);
    offset += digit.length;
  }
  return new InMemoryDataset('mnist', [28, 28, 1], images, labels);
}
