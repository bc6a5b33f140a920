import { describe, expect, it } from 'vitest';
import { dealShards, makeShards, ShardSampler, splitDataset } from './shards.ts';

const sorted = (values: ArrayLike<number>) => Array.from(values).sort((a, b) => a - b);
const range = (count: number) => Array.from({ length: count }, (_, i) => i);

describe('splitDataset', () => {
  it('is the same for the same seed and differs for another', () => {
    const a = splitDataset(500, 0.2, 7);
    const b = splitDataset(500, 0.2, 7);
    expect(Array.from(a.train)).toEqual(Array.from(b.train));
    expect(Array.from(a.heldOut)).toEqual(Array.from(b.heldOut));
    expect(Array.from(splitDataset(500, 0.2, 8).heldOut)).not.toEqual(Array.from(a.heldOut));
  });

  it('splits into disjoint sets that together cover every example once', () => {
    const { train, heldOut } = splitDataset(1003, 0.1, 3);
    expect(sorted([...train, ...heldOut])).toEqual(range(1003));
    const held = new Set(heldOut);
    expect(Array.from(train).some((index) => held.has(index))).toBe(false);
    // Held-out indices come sorted; the training order is shuffled, not the identity.
    expect(Array.from(heldOut)).toEqual(sorted(heldOut));
    expect(Array.from(train)).not.toEqual(sorted(train));
  });

  it('holds out round(count * fraction) examples', () => {
    expect(splitDataset(1000, 0.1, 1).heldOut.length).toBe(100);
    expect(splitDataset(1003, 0.1, 1).heldOut.length).toBe(100);
    expect(splitDataset(1006, 0.1, 1).heldOut.length).toBe(101);
    expect(splitDataset(50, 0, 1).heldOut.length).toBe(0);
    expect(splitDataset(50, 0, 1).train.length).toBe(50);
    expect(splitDataset(50, 0.9, 1).train.length).toBe(5);
  });
});

describe('makeShards', () => {
  it('covers the training set exactly once, in order, with sizes differing by at most one', () => {
    const { train } = splitDataset(1001, 0.1, 2);
    for (const shardCount of [1, 3, 16, 901]) {
      const shards = makeShards(train, shardCount);
      expect(shards).toHaveLength(shardCount);
      expect(shards.flatMap((shard) => Array.from(shard))).toEqual(Array.from(train));
      const sizes = shards.map((shard) => shard.length);
      expect(Math.max(...sizes) - Math.min(...sizes), `${shardCount} shards`).toBeLessThanOrEqual(1);
    }
  });

  it('makes empty shards when there are more shards than examples', () => {
    const shards = makeShards(Uint32Array.from([5, 6]), 4);
    expect(shards.map((shard) => shard.length).sort()).toEqual([0, 0, 1, 1]);
    expect(shards.flatMap((shard) => Array.from(shard))).toEqual([5, 6]);
  });
});

describe('ShardSampler', () => {
  const shards = makeShards(
    Uint32Array.from(range(40), (i) => 1000 + i),
    4,
  );

  it('gives every index of a shard exactly once per epoch, and reshuffles each epoch', () => {
    const sampler = new ShardSampler(shards, 11);
    const epochs = [0, 1, 2].map(() => sampler.draw([2], shards[2].length));
    for (const epoch of epochs) expect(sorted(epoch)).toEqual(sorted(shards[2]));
    expect(epochs[1]).not.toEqual(epochs[0]);
    expect(epochs[2]).not.toEqual(epochs[1]);
    expect(sampler.cursors[2]).toEqual({ epoch: 2, position: shards[2].length });
    // Other shards were not touched.
    expect(sampler.cursors[0]).toEqual({ epoch: 0, position: 0 });
  });

  it('keeps the epoch guarantee across draws of any size', () => {
    const sampler = new ShardSampler(shards, 12);
    const drawn = [3, 1, 4, 2].flatMap((count) => sampler.draw([1], count));
    expect(sorted(drawn)).toEqual(sorted(shards[1]));
  });

  it('takes in turn from several shards', () => {
    const sampler = new ShardSampler(shards, 13);
    const drawn = sampler.draw([0, 3], 6);
    const shardOf = (index: number) => shards.findIndex((shard) => shard.includes(index));
    expect(drawn.map(shardOf)).toEqual([0, 3, 0, 3, 0, 3]);
  });

  it('is the same sequence for the same seed, another for another seed', () => {
    const a = new ShardSampler(shards, 5).draw([0, 1, 2, 3], 30);
    expect(new ShardSampler(shards, 5).draw([0, 1, 2, 3], 30)).toEqual(a);
    expect(new ShardSampler(shards, 6).draw([0, 1, 2, 3], 30)).not.toEqual(a);
  });

  it('continues the exact same sequence from saved cursors (checkpoint resume)', () => {
    const original = new ShardSampler(shards, 21);
    original.draw([0, 2], 13);
    original.draw([1, 3], 27);
    // What a checkpoint stores: a copy of the cursors, taken mid-epoch for some shards and at an epoch's end for others.
    const saved = structuredClone(original.cursors);
    const resumed = new ShardSampler(shards, 21, saved);
    expect(resumed.cursors).toEqual(original.cursors);
    for (const shardIds of [[0, 1, 2, 3], [2], [3, 1], [0, 1, 2, 3]]) {
      expect(resumed.draw(shardIds, 17)).toEqual(original.draw(shardIds, 17));
    }
    // The sampler copies the cursors it is given: drawing does not change the saved ones.
    expect(saved).not.toEqual(resumed.cursors);
  });

  it('skips empty shards, and throws when every given shard is empty', () => {
    const withEmpty = [Uint32Array.from([1, 2]), new Uint32Array(0), Uint32Array.from([3])];
    const sampler = new ShardSampler(withEmpty, 1);
    expect(sorted(sampler.draw([0, 1, 2], 3))).toEqual([1, 2, 3]);
    expect(() => sampler.draw([1], 1)).toThrow(/every given shard is empty/);
  });
});

describe('dealShards', () => {
  it('deals round-robin in worker order', () => {
    const dealt = dealShards(7, ['a', 'b', 'c']);
    expect(Object.fromEntries(dealt)).toEqual({ a: [0, 3, 6], b: [1, 4], c: [2, 5] });
  });

  it('gives every shard to exactly one worker, shares differing by at most one', () => {
    const workers = ['w1', 'w2', 'w3', 'w4', 'w5'];
    const dealt = dealShards(16, workers);
    expect(sorted([...dealt.values()].flat())).toEqual(range(16));
    const sizes = [...dealt.values()].map((ids) => ids.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('leaves extra workers empty-handed and deals nothing to no workers', () => {
    expect(Object.fromEntries(dealShards(2, ['a', 'b', 'c']))).toEqual({ a: [0], b: [1], c: [] });
    expect(dealShards(4, []).size).toBe(0);
  });
});
