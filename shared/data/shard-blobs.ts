import { alignedCopy, bytesOf, pack, unpack } from '../codec/packr.ts';
import { contentHash } from '../codec/named.ts';
import type { Batch } from '../models/types.ts';
import * as check from '../protocol/check.ts';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import type { InMemoryDataset } from './dataset.ts';
import { fromBytes, toBytes } from './resize.ts';

/*
 * A folder dataset's shards as workers without the folder fetch them: each
 * shard's examples in one immutable blob, addressed by the sha256 of its
 * bytes, so a worker can cache it and check what it got.
 */

/**
 * Most bytes one shard blob may hold (pixels as bytes, an index and a label
 * per example): a tab fetches a shard whole, the coordinator serves it from
 * memory. The job config refuses a dataset.shards that would exceed it.
 */
export const MAX_SHARD_BYTES = 32 * 1024 * 1024;
/** Bytes a shard blob spends per example besides its pixels: its index and its label. */
export const SHARD_BYTES_PER_EXAMPLE = 8;
/** msgpack's keys and length headers around the three arrays. */
const BLOB_OVERHEAD = 64;

/** A shard's examples, decoded: dataset indices, their labels and their pixels in [0, 1] (NHWC). */
export interface ShardExamples {
  indices: Uint32Array;
  labels: Int32Array;
  images: Float32Array;
}

/** The examples at `indices` as one blob: pixels quantized to bytes (the folder's cache holds no more than that). */
export function encodeShard(dataset: InMemoryDataset, indices: Uint32Array): Uint8Array {
  const batch = dataset.batch(indices);
  return pack({ indices: bytesOf(indices), labels: bytesOf(batch.labels), pixels: toBytes(batch.images) }).slice();
}

/**
 * Reads a shard blob, after checking its bytes hash to `hash` (a blob that was
 * cut short or changed on the way is refused, not trained on), and that its
 * parts agree with each other and the image size.
 */
export async function decodeShard(bytes: Uint8Array, hash: string, imageSize: number): Promise<ShardExamples> {
  if (bytes.byteLength > MAX_SHARD_BYTES + BLOB_OVERHEAD)
    throw new TesseraError(ErrorCode.TooLarge, `shard ${hash}: ${bytes.byteLength} bytes, over ${MAX_SHARD_BYTES}`);
  const actual = await contentHash(bytes);
  if (actual !== hash) throw new TesseraError(ErrorCode.DecodeFailed, `shard ${hash}: its bytes hash to ${actual}`, { field: 'hash' });
  const message = check.record(unpack(bytes), 'shard', ['indices', 'labels', 'pixels']);
  const indices = check.bytes(message.indices, 'indices', MAX_SHARD_BYTES);
  const count = indices.byteLength / 4;
  const labels = check.bytes(message.labels, 'labels', MAX_SHARD_BYTES);
  const pixels = check.bytes(message.pixels, 'pixels', MAX_SHARD_BYTES);
  if (!Number.isInteger(count) || labels.byteLength !== count * 4 || pixels.byteLength !== count * imageSize) {
    throw new TesseraError(
      ErrorCode.DecodeFailed,
      `shard ${hash}: ${indices.byteLength} index bytes, ${labels.byteLength} label bytes and ${pixels.byteLength} pixels disagree`,
      {
        field: 'pixels',
      },
    );
  }
  return { indices: alignedCopy(indices, Uint32Array), labels: alignedCopy(labels, Int32Array), images: fromBytes(pixels) };
}

/** The examples at `indices`, taken from the given shards; an index none of them holds is an error naming it. */
export function batchFromShards(shards: readonly ShardExamples[], indices: readonly number[], imageSize: number): Batch {
  const images = new Float32Array(indices.length * imageSize);
  const labels = new Int32Array(indices.length);
  const rows = new Map<number, { shard: ShardExamples; row: number }>();
  for (const shard of shards) shard.indices.forEach((index, row) => rows.set(index, { shard, row }));
  indices.forEach((index, i) => {
    const found = rows.get(index);
    if (!found) throw new TesseraError(ErrorCode.NotAssigned, `example ${index} is in none of the assignment's shards`, { field: `sampleIndices[${i}]` });
    images.set(found.shard.images.subarray(found.row * imageSize, (found.row + 1) * imageSize), i * imageSize);
    labels[i] = found.shard.labels[found.row];
  });
  return { images, labels, count: indices.length };
}
