import type { Batch } from '../models/types.ts';

/** Labelled images held in memory, NHWC, pixels in [0, 1]. */
export class InMemoryDataset {
  readonly count: number;
  readonly imageSize: number;

  constructor(
    readonly id: string,
    readonly imageShape: [number, number, number],
    readonly images: Float32Array,
    readonly labels: Int32Array,
  ) {
    this.imageSize = imageShape[0] * imageShape[1] * imageShape[2];
    this.count = labels.length;
    if (images.length !== this.count * this.imageSize) {
      throw new Error(`dataset ${id}: ${images.length} pixels for ${this.count} images of ${this.imageSize}`);
    }
  }

  /** The examples at these indices, copied into one batch. */
  batch(indices: ArrayLike<number>): Batch {
    const images = new Float32Array(indices.length * this.imageSize);
    const labels = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i];
      if (!Number.isInteger(index) || index < 0 || index >= this.count) {
        throw new RangeError(`dataset ${this.id}: index ${index} outside [0, ${this.count})`);
      }
      images.set(this.images.subarray(index * this.imageSize, (index + 1) * this.imageSize), i * this.imageSize);
      labels[i] = this.labels[index];
    }
    return { images, labels, count: indices.length };
  }
}
