import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { DEFAULT_LEASE_TTL_MS, leaseTiming } from './lease.ts';

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
