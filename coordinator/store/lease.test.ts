import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { DEFAULT_LEASE_TTL_MS, leaseTiming } from './lease.ts';

describe('leaseTiming', () => {
  it('renews every TTL/8 and stops serving TTL/16 before the bucket could drop the lease', () => {
    expect(leaseTiming()).toEqual({ ttlMs: DEFAULT_LEASE_TTL_MS, renewMs: 1_000, pollMs: 500, marginMs: 500 });
    const { ttlMs, renewMs, marginMs } = leaseTiming(16_000);
    // What a server's loss may take from the lease after its last renewal, and still leave it held.
    expect(ttlMs - renewMs - marginMs).toBe(13_000);
  });

  it('refuses a TTL that is not a whole number of ms from 2 s to 10 min, naming --lease-ttl', () => {
    for (const wrong of [0, 1_999, 600_001, 2_500.5, Number.NaN]) {
      expect(() => leaseTiming(wrong)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidConfig, field: 'lease-ttl' }));
    }
  });
});
