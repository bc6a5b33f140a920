import { describe, expect, it } from 'vitest';
import { listCodecs } from '../shared/codec/index.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { DEFAULT_DOOR_LIMITS, parseDoorLimits, TokenBucket, updateFrameLimit } from './limits.ts';

describe('door limits', () => {
  it('fills defaults, takes overrides, and names an unknown key or a bad value', () => {
    expect(parseDoorLimits({})).toEqual(DEFAULT_DOOR_LIMITS);
    expect(parseDoorLimits({ helloDeadlineMs: 500 })).toEqual({ ...DEFAULT_DOOR_LIMITS, helloDeadlineMs: 500 });
    for (const [raw, field] of [
      [{ helloDeadlinMs: 5 }, 'doorLimits.helloDeadlinMs'],
      [{ messagesPerSecond: 0 }, 'doorLimits.messagesPerSecond'],
      [{ preHelloFrameBytes: 10 }, 'doorLimits.preHelloFrameBytes'],
    ] as const) {
      const error = (() => {
        try {
          parseDoorLimits(raw);
        } catch (caught) {
          return caught as TesseraError;
        }
      })();
      expect(error).toMatchObject({ code: ErrorCode.InvalidConfig, field });
    }
  });

  it('an update’s frame limit covers what every codec writes for the shapes, plus the margin', () => {
    const shapes = { g_w: [64, 3, 3, 32], d_b: [10] };
    const limit = updateFrameLimit(shapes, 1000);
    for (const codec of listCodecs()) expect(limit - 1000).toBeGreaterThanOrEqual(codec.maxEncodedBytes(shapes));
    expect(limit - 1000).toBe(Math.max(...listCodecs().map((codec) => codec.maxEncodedBytes(shapes))));
  });

  it('a token bucket refuses a spend it cannot cover whole, and refills with time up to its capacity', () => {
    const bucket = new TokenBucket(10, 5, 0);
    expect(bucket.take(8, 0)).toBe(true);
    expect(bucket.take(3, 0)).toBe(false);
    expect(bucket.take(2, 0)).toBe(true);
    expect(bucket.take(5, 1000)).toBe(true);
    expect(bucket.take(1, 1000)).toBe(false);
    expect(bucket.take(10, 60_000)).toBe(true);
    expect(bucket.take(1, 60_000)).toBe(false);
    bucket.resize(100);
    expect(bucket.take(50, 70_000)).toBe(true);
  });
});
