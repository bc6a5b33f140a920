import { createRandom, createUniform, shuffle } from '../training/random.ts';
import type { LabelledImages } from './train-classifier.ts';

/** Side of the square patches a patch-shuffled image is cut into (28 = 4 x 7). */
const PATCH = 7;

/**
 * `count` images that are not digits, for outlier exposure (Hendrycks et al.
 * 2019): trained towards a uniform class distribution, they teach the
 * classifier to be unsure off the data manifold. Without them it called
 * 99.8% of uniform noise a digit with confidence above 0.9, and the
 * recognisable share would pass a generator of junk. Four kinds in turn:
 * uniform noise, sparse noise, a real image with its pixels shuffled (the
 * ink without the shape) and with its 7x7 patches shuffled (strokes in no
 * order, closest to a failed generator's output). Seeded; images square.
 */
export function outlierImages(count: number, source: LabelledImages, imageShape: [number, number, number], seed: number): Float32Array {
  const [height, width, channels] = imageShape;
  const imageSize = height * width * channels;
  const images = new Float32Array(count * imageSize);
  const uniform = createUniform(seed);
  const next = createRandom(seed ^ 0x5bd1e995);
  for (let n = 0; n < count; n++) {
    const target = images.subarray(n * imageSize, (n + 1) * imageSize);
    const row = next() % source.count;
    const real = source.images.subarray(row * imageSize, (row + 1) * imageSize);
    switch (n % 4) {
      case 0:
        for (let i = 0; i < imageSize; i++) target[i] = uniform();
        break;
      case 1: {
        // About as much ink as a digit (a fifth of the pixels), scattered.
        const density = 0.05 + 0.3 * uniform();
        for (let i = 0; i < imageSize; i++) target[i] = uniform() < density ? uniform() : 0;
        break;
      }
      case 2: {
        const order = shuffle(
          Uint32Array.from({ length: imageSize }, (_, i) => i),
          next(),
        );
        for (let i = 0; i < imageSize; i++) target[i] = real[order[i]];
        break;
      }
      default:
        shufflePatches(real, target, height, width, channels, next());
    }
  }
  return images;
}

/** Copies `source` into `target` with its PATCH x PATCH tiles in a seeded order (the remainder, if any, stays blank). */
function shufflePatches(source: Float32Array, target: Float32Array, height: number, width: number, channels: number, seed: number): void {
  const rows = Math.floor(height / PATCH);
  const columns = Math.floor(width / PATCH);
  const order = shuffle(
    Uint32Array.from({ length: rows * columns }, (_, i) => i),
    seed,
  );
  for (let tile = 0; tile < rows * columns; tile++) {
    const from = order[tile];
    const [fromY, fromX] = [Math.floor(from / columns) * PATCH, (from % columns) * PATCH];
    const [toY, toX] = [Math.floor(tile / columns) * PATCH, (tile % columns) * PATCH];
    for (let y = 0; y < PATCH; y++) {
      const fromOffset = ((fromY + y) * width + fromX) * channels;
      const toOffset = ((toY + y) * width + toX) * channels;
      target.set(source.subarray(fromOffset, fromOffset + PATCH * channels), toOffset);
    }
  }
}
