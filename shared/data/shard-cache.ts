import type { Batch } from '../models/types.ts';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { batchFromShards, decodeShard, type ShardExamples } from './shard-blobs.ts';

/** What a worker knows of a folder dataset from its welcome: the images' shape and each shard's content hash. */
export interface ShardedDataset {
  imageShape: readonly [number, number, number];
  /** Content hash of each shard, by shard id. */
  shardHashes: readonly string[];
}

/**
 * A worker's copy of the shards it was assigned: each fetched once by its
 * hash, checked against it, decoded and kept (the least recently used are
 * dropped past `limit`). Browser tabs and Node workers without the folder
 * share it; each brings its own fetch.
 */
export class ShardCache {
  private readonly shards = new Map<string, Promise<ShardExamples>>();

  constructor(
    private readonly fetchShard: (hash: string) => Promise<Uint8Array>,
    private readonly limit = 64,
  ) {}

  /** The examples at `indices`, from the assignment's shards (fetched when not cached). */
  async batch(dataset: ShardedDataset, indices: readonly number[], shardIds: readonly number[]): Promise<Batch> {
    const [height, width, channels] = dataset.imageShape;
    const imageSize = height * width * channels;
    const shards = await Promise.all(
      shardIds.map((id, i) => {
        const hash = dataset.shardHashes[id];
        if (hash === undefined)
          throw new TesseraError(ErrorCode.NotAssigned, `no shard ${id}: the job has ${dataset.shardHashes.length}`, { field: `shardIds[${i}]` });
        return this.shard(hash, imageSize);
      }),
    );
    return batchFromShards(shards, indices, imageSize);
  }

  /** How many shards are held. */
  get size(): number {
    return this.shards.size;
  }

  private shard(hash: string, imageSize: number): Promise<ShardExamples> {
    let shard = this.shards.get(hash);
    if (shard) {
      // Most recently used last: Map keeps insertion order.
      this.shards.delete(hash);
    } else {
      shard = this.fetchShard(hash).then((bytes) => decodeShard(bytes, hash, imageSize));
      // A failed fetch is not kept: the next assignment asks again.
      shard.catch(() => this.shards.get(hash) === shard && this.shards.delete(hash));
    }
    this.shards.set(hash, shard);
    while (this.shards.size > this.limit) this.shards.delete(this.shards.keys().next().value!);
    return shard;
  }
}
