import { nkeys } from 'nats';
import { describe, expect, it } from 'vitest';
import { IDLE_MS, NatsIdentityPool, parseSeeds } from './nats-identities.ts';

const seeds = Array.from({ length: 3 }, () => new TextDecoder().decode(nkeys.createUser().getSeed()));

describe('NatsIdentityPool', () => {
  it('lends each identity once, then none until one has been unused for IDLE_MS', () => {
    const pool = new NatsIdentityPool(seeds);
    const lent = [pool.lend([], 0), pool.lend([], 1), pool.lend([], 2)];
    expect(new Set(lent.map((identity) => identity?.seed))).toEqual(new Set(seeds));
    expect(lent[0]!.connectionId).toBe(nkeys.fromSeed(new TextEncoder().encode(lent[0]!.seed)).getPublicKey());
    expect(pool.lend([], 3)).toBeUndefined();
    // Lent but never connected: free again after IDLE_MS, the longest unused first.
    expect(pool.lend([], IDLE_MS)).toEqual(lent[0]);
  });

  it('keeps an identity whose worker is connected, or was a moment ago, out of the pool', () => {
    const pool = new NatsIdentityPool(seeds);
    const [first, second, third] = [pool.lend([], 0)!, pool.lend([], 0)!, pool.lend([], 0)!];
    // The first stays connected; the second was seen until its link dropped at IDLE_MS - 1.
    pool.observe([first.connectionId, second.connectionId], IDLE_MS - 1);
    expect(pool.lend([first.connectionId], IDLE_MS + 1)).toEqual(third);
    expect(pool.lend([first.connectionId], IDLE_MS + 2)).toBeUndefined();
    expect(pool.lend([first.connectionId], 2 * IDLE_MS)).toEqual(second);
  });

  it('reads seeds one per line (a file) or comma-separated (an environment variable), comments skipped', () => {
    expect(parseSeeds(`# pool\n${seeds[0]}\n\n  ${seeds[1]}  \n`)).toEqual([seeds[0], seeds[1]]);
    expect(parseSeeds(`${seeds[0]},${seeds[1]}, ${seeds[2]}`)).toEqual(seeds);
  });
});
