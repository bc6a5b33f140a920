import { describe, expect, it } from 'vitest';
import { contentHash } from '../codec/named.ts';
import { pack } from '../codec/packr.ts';
import { InMemoryDataset } from './dataset.ts';
import { batchFromShards, decodeShard, encodeShard } from './shard-blobs.ts';
import { ShardCache } from './shard-cache.ts';

// 10 RGB images of 2x2: pixel values k/255, so bytes carry them exactly.
const SHAPE: [number, number, number] = [2, 2, 3];
const SIZE = 12;
const dataset = new InMemoryDataset(
  'test',
  SHAPE,
  Float32Array.from({ length: 10 * SIZE }, (_, i) => (i % 256) / 255),
  Int32Array.from({ length: 10 }, (_, i) => i % 3),
);
const shardIndices = [Uint32Array.of(7, 2, 5), Uint32Array.of(0, 9), Uint32Array.of(1, 3, 4, 6, 8)];

describe('shard blobs', () => {
  it('round-trip their examples exactly, addressed by the sha256 of their bytes', async () => {
    const bytes = encodeShard(dataset, shardIndices[0]);
    const hash = await contentHash(bytes);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    const shard = await decodeShard(bytes, hash, SIZE);
    expect(Array.from(shard.indices)).toEqual([7, 2, 5]);
    const expected = dataset.batch([7, 2, 5]);
    expect(shard.images).toEqual(expected.images);
    expect(shard.labels).toEqual(expected.labels);
  });

  it('hash the same content to the same address and other content elsewhere', async () => {
    const [a, again, other] = await Promise.all(
      [shardIndices[0], shardIndices[0], shardIndices[1]].map((indices) => contentHash(encodeShard(dataset, indices))),
    );
    expect(again).toBe(a);
    expect(other).not.toBe(a);
  });

  it('refuse bytes that do not hash to the address asked for, and parts that disagree', async () => {
    const bytes = encodeShard(dataset, shardIndices[0]);
    const hash = await contentHash(bytes);
    const changed = bytes.slice();
    changed[changed.length - 1] ^= 1;
    await expect(decodeShard(changed, hash, SIZE)).rejects.toMatchObject({ code: 'DECODE_FAILED', field: 'hash' });
    await expect(decodeShard(bytes.subarray(0, 20), hash, SIZE)).rejects.toMatchObject({ code: 'DECODE_FAILED' });
    // Well-formed and honestly hashed, but with pixels for two images and indices for three.
    const lying = pack({ indices: new Uint8Array(12), labels: new Uint8Array(12), pixels: new Uint8Array(2 * SIZE) }).slice();
    await expect(decodeShard(lying, await contentHash(lying), SIZE)).rejects.toMatchObject({ code: 'DECODE_FAILED', field: 'pixels' });
    await expect(decodeShard(bytes, hash, SIZE + 1)).rejects.toMatchObject({ field: 'pixels' });
  });

  it('give a batch of any indices they hold, and name one they do not', async () => {
    const shards = await Promise.all(
      shardIndices.map(async (indices) => decodeShard(encodeShard(dataset, indices), await contentHash(encodeShard(dataset, indices)), SIZE)),
    );
    const batch = batchFromShards(shards, [9, 2, 6, 2], SIZE);
    expect(batch).toEqual(dataset.batch([9, 2, 6, 2]));
    expect(() => batchFromShards(shards.slice(0, 1), [7, 0], SIZE)).toThrow(expect.objectContaining({ code: 'NOT_ASSIGNED', field: 'sampleIndices[1]' }));
  });
});

describe('ShardCache', () => {
  const served = new Map(shardIndices.map((indices) => [indices, encodeShard(dataset, indices)]));
  const blobs = [...served.values()];

  async function sharded() {
    return { imageShape: SHAPE, shardHashes: await Promise.all(blobs.map((bytes) => contentHash(bytes))) };
  }

  it("fetches each of an assignment's shards once by hash, then serves batches from what it keeps", async () => {
    const described = await sharded();
    const fetched: string[] = [];
    const cache = new ShardCache(async (hash) => {
      fetched.push(hash);
      return blobs[described.shardHashes.indexOf(hash)];
    });
    expect(await cache.batch(described, [5, 0], [0, 1])).toEqual(dataset.batch([5, 0]));
    expect(await cache.batch(described, [9, 7, 2], [1, 0])).toEqual(dataset.batch([9, 7, 2]));
    expect(fetched).toEqual(described.shardHashes.slice(0, 2));
    await expect(cache.batch(described, [0], [3])).rejects.toMatchObject({ code: 'NOT_ASSIGNED', field: 'shardIds[0]' });
  });

  it('drops a shard whose bytes do not match its hash, and asks again next time', async () => {
    const described = await sharded();
    let calls = 0;
    const cache = new ShardCache(async () => (calls++ === 0 ? blobs[1] : blobs[0]));
    await expect(cache.batch(described, [7], [0])).rejects.toMatchObject({ code: 'DECODE_FAILED' });
    expect(cache.size).toBe(0);
    expect(await cache.batch(described, [7], [0])).toEqual(dataset.batch([7]));
    expect(calls).toBe(2);
  });

  it('keeps at most its limit, dropping the least recently used', async () => {
    const described = await sharded();
    const fetched: number[] = [];
    const cache = new ShardCache(async (hash) => {
      const id = described.shardHashes.indexOf(hash);
      fetched.push(id);
      return blobs[id];
    }, 2);
    await cache.batch(described, [7], [0]);
    await cache.batch(described, [0], [1]);
    await cache.batch(described, [7], [0]);
    await cache.batch(described, [1], [2]);
    expect(cache.size).toBe(2);
    // Shard 1 was the least recently used: it is fetched again, shard 0 is not.
    await cache.batch(described, [7, 0], [0, 1]);
    expect(fetched).toEqual([0, 1, 2, 1]);
  });
});
