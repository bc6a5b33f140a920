import { deriveSeed, shuffle } from '../training/random.ts';

/** Which examples train and which are held out for evaluation; fixed by the seed. */
export interface DataSplit {
  train: Uint32Array;
  heldOut: Uint32Array;
}

/** Splits `count` examples at random (seeded) into training and held-out sets. */
export function splitDataset(count: number, heldOutFraction: number, seed: number): DataSplit {
  const order = shuffle(
    Uint32Array.from({ length: count }, (_, i) => i),
    deriveSeed(seed, 0x5e11),
  );
  const heldOutCount = Math.round(count * heldOutFraction);
  return { heldOut: order.slice(0, heldOutCount).sort(), train: order.slice(heldOutCount) };
}

/** Cuts the training indices into `shardCount` contiguous shards of near-equal size. */
export function makeShards(train: Uint32Array, shardCount: number): Uint32Array[] {
  const shards: Uint32Array[] = [];
  for (let shard = 0; shard < shardCount; shard++) {
    const start = Math.floor((shard * train.length) / shardCount);
    const end = Math.floor(((shard + 1) * train.length) / shardCount);
    shards.push(train.slice(start, end));
  }
  return shards;
}

/** Where each shard's pass over its examples stands; saved with the checkpoint. */
export interface ShardCursor {
  epoch: number;
  position: number;
}

/**
 * Draws batches from shards without replacement: each shard is walked in an
 * order reshuffled every epoch, so over an epoch every example is seen once.
 */
export class ShardSampler {
  readonly cursors: ShardCursor[];
  private readonly orders = new Map<number, { epoch: number; order: Uint32Array }>();

  constructor(
    private readonly shards: Uint32Array[],
    private readonly seed: number,
    cursors?: ShardCursor[],
  ) {
    this.cursors = cursors ? cursors.map((cursor) => ({ ...cursor })) : shards.map(() => ({ epoch: 0, position: 0 }));
  }

  get shardCount(): number {
    return this.shards.length;
  }

  /** `count` dataset indices taken in turn from the given shards. */
  draw(shardIds: readonly number[], count: number): number[] {
    const indices: number[] = [];
    let turn = 0;
    while (indices.length < count) {
      const shardId = shardIds[turn++ % shardIds.length];
      const shard = this.shards[shardId];
      if (shard.length === 0) {
        if (shardIds.every((id) => this.shards[id].length === 0)) throw new Error('ShardSampler: every given shard is empty');
        continue;
      }
      const cursor = this.cursors[shardId];
      if (cursor.position >= shard.length) {
        cursor.epoch += 1;
        cursor.position = 0;
      }
      indices.push(this.order(shardId, cursor.epoch)[cursor.position++]);
    }
    return indices;
  }

  private order(shardId: number, epoch: number): Uint32Array {
    const cached = this.orders.get(shardId);
    if (cached && cached.epoch === epoch) return cached.order;
    const order = shuffle(this.shards[shardId].slice(), deriveSeed(this.seed, shardId, epoch));
    this.orders.set(shardId, { epoch, order });
    return order;
  }
}

/** Deals shards round-robin to workers: each worker gets about the same share. */
export function dealShards(shardCount: number, workerIds: readonly string[]): Map<string, number[]> {
  const dealt = new Map<string, number[]>(workerIds.map((id) => [id, []]));
  if (workerIds.length === 0) return dealt;
  for (let shard = 0; shard < shardCount; shard++) dealt.get(workerIds[shard % workerIds.length])!.push(shard);
  return dealt;
}
