import { createRandom, shuffle } from '../training/random.ts';
import type { LabelledImages } from './train-classifier.ts';

/**
 * `count` row indices out of `total`, seeded: without replacement while
 * `count` <= `total`, then every row again in a new order, and so on.
 */
export function drawRows(total: number, count: number, seed: number): Uint32Array {
  const rows = new Uint32Array(count);
  const next = createRandom(seed);
  for (let start = 0; start < count; start += total) {
    const order = shuffle(
      Uint32Array.from({ length: total }, (_, i) => i),
      next(),
    );
    rows.set(order.subarray(0, Math.min(total, count - start)), start);
  }
  return rows;
}

/** The given rows of a labelled set, copied into a new one. */
export function pickRows(data: LabelledImages, rows: ArrayLike<number>, imageSize: number): LabelledImages {
  const images = new Float32Array(rows.length * imageSize);
  const labels = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    images.set(data.images.subarray(row * imageSize, (row + 1) * imageSize), i * imageSize);
    labels[i] = data.labels[row];
  }
  return { images, labels, count: rows.length };
}
