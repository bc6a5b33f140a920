import type { NatsConnection } from 'nats';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { DEFAULT_LEASE_TTL_MS, JobLease, leaseTiming } from './lease.ts';

describe('leaseTiming', () => {
  it('renews every TTL/8, stops writing TTL/16 before the bucket could drop the lease, gives up after 2 x TTL (12 s at least)', () => {
    expect(leaseTiming()).toEqual({ ttlMs: DEFAULT_LEASE_TTL_MS, renewMs: 1_000, pollMs: 500, marginMs: 500, giveUpMs: 16_000 });
    const { ttlMs, renewMs, marginMs, giveUpMs } = leaseTiming(16_000);
    // What a server's loss may take from the lease after its last renewal, and still leave it held.
    expect(ttlMs - renewMs - marginMs).toBe(13_000);
    expect(giveUpMs).toBe(32_000);
    // Past nats-server 2.9's longest election (9 s of a follower's timeout, then its campaign) even for a short TTL.
    expect(leaseTiming(3_000).giveUpMs).toBe(12_000);
  });

  it('refuses a TTL that is not a whole number of ms from 2 s to 10 min, naming --lease-ttl', () => {
    for (const wrong of [0, 1_999, 600_001, 2_500.5, Number.NaN]) {
      expect(() => leaseTiming(wrong)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidConfig, field: 'lease-ttl' }));
    }
  });
});

/** A bucket whose takes and reads answer as scripted: the race of a standby's take and the key's expiry, made exact. */
function scriptedBucket(script: { creates: ('taken' | 'ok')[]; holders: (string | undefined)[] }) {
  const calls: string[] = [];
  const kv = {
    async create() {
      calls.push('create');
      if (script.creates.shift() === 'ok') return 7;
      throw Object.assign(new Error('wrong last sequence'), { api_error: { err_code: 10071 } });
    },
    async get() {
      calls.push('get');
      const holder = script.holders.shift();
      return holder === undefined ? null : { operation: 'PUT', string: () => holder };
    },
    async put() {
      return 8;
    },
    async delete() {},
  };
  const nc = { jetstream: () => ({ views: { kv: async () => kv } }) } as unknown as NatsConnection;
  return { nc, calls };
}

describe('JobLease.acquire (a standby)', () => {
  it('takes the lease at once when it is found free just after a refused take, telling nobody it was free', async () => {
    // Refused (someone holds it), then the key expires before the look: free. The next take is not a poll (10 s) later.
    const { nc, calls } = scriptedBucket({ creates: ['taken', 'ok'], holders: [undefined] });
    const lease = await JobLease.open(nc, 'race', { replicas: 1, ttlMs: 160_000 });
    const told: (string | undefined)[] = [];
    const startedAt = Date.now();
    await lease.acquire({ onWaiting: (who) => told.push(who) });
    expect(Date.now() - startedAt).toBeLessThan(lease.timing.pollMs);
    expect(calls).toEqual(['create', 'get', 'create']);
    expect(told).toEqual([]);
    expect(lease.held).toBe(true);
    lease.stop();
  });

  it('tells who holds it each time that changes, and that nobody does when a take fails twice on a free key', async () => {
    const { nc, calls } = scriptedBucket({ creates: ['taken', 'taken', 'taken', 'taken', 'ok'], holders: ['a', 'a', undefined, undefined] });
    const lease = await JobLease.open(nc, 'told', { replicas: 1, ttlMs: 2_000 });
    const told: (string | undefined)[] = [];
    await lease.acquire({ onWaiting: (who) => told.push(who) });
    expect(told).toEqual(['a', undefined]);
    expect(calls).toEqual(['create', 'get', 'create', 'get', 'create', 'get', 'create', 'get', 'create']);
    lease.stop();
  });
});
