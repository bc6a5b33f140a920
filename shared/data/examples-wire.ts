import { alignedCopy, bytesOf, pack, unpack } from '../codec/packr.ts';
import type { Batch } from '../models/types.ts';
import * as check from '../protocol/check.ts';
import { LIMITS } from '../protocol/messages.ts';

/** Most examples one request may ask for: one assignment's, whatever its size (the protocol's one batch limit). */
export const MAX_EXAMPLES_PER_REQUEST = LIMITS.maxBatch;

/** Examples as the coordinator serves them to browser workers: float32 pixels, exact, so every worker trains on the same values. */
export function encodeExamples(batch: Batch): Uint8Array {
  return pack({ count: batch.count, images: bytesOf(batch.images), labels: bytesOf(batch.labels) }).slice();
}

/** Reads examples served by encodeExamples, checking sizes against the image size. */
export function decodeExamples(bytes: Uint8Array, imageSize: number): Batch {
  const message = check.record(unpack(bytes), 'examples', ['count', 'images', 'labels']);
  const count = check.integer(message.count, 'count', 0, MAX_EXAMPLES_PER_REQUEST);
  const images = check.bytes(message.images, 'images', count * imageSize * 4);
  const labels = check.bytes(message.labels, 'labels', count * 4);
  if (images.byteLength !== count * imageSize * 4) check.oneOf('short', 'images', [`${count * imageSize * 4} bytes`]);
  if (labels.byteLength !== count * 4) check.oneOf('short', 'labels', [`${count * 4} bytes`]);
  return { count, images: alignedCopy(images, Float32Array), labels: alignedCopy(labels, Int32Array) };
}

/** Parses `1,2,3` into dataset indices below `count`. */
export function parseIndices(text: string, count: number): number[] {
  const parts = text === '' ? [] : text.split(',');
  if (parts.length > MAX_EXAMPLES_PER_REQUEST) check.integerArray(parts, 'indices', MAX_EXAMPLES_PER_REQUEST);
  return check.integerArray(parts.map(Number), 'indices', MAX_EXAMPLES_PER_REQUEST, 0, count - 1);
}
