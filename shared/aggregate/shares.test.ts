import { describe, expect, it } from 'vitest';
import { cappedShares } from './shares.ts';

const sum = (values: Float64Array) => values.reduce((a, b) => a + b, 0);

describe('cappedShares', () => {
  it('is weight over total when nobody passes the cap', () => {
    expect(Array.from(cappedShares([1, 3], 1))).toEqual([0.25, 0.75]);
    expect(Array.from(cappedShares([2, 1, 1], 0.5))).toEqual([0.5, 0.25, 0.25]);
  });

  it('caps a heavy update and gives what it loses to the others by weight', () => {
    const shares = cappedShares([94, 2, 2, 2], 0.5);
    expect(shares[0]).toBe(0.5);
    expect(Array.from(shares.slice(1))).toEqual([1 / 6, 1 / 6, 1 / 6].map((v) => expect.closeTo(v, 12)));
    expect(sum(shares)).toBeCloseTo(1, 12);
  });

  it('caps again when the redistribution pushes another past the cap', () => {
    // 10 and 8 of 20: capping the first at 0.4 gives the second 0.6 x 8/10 = 0.48, itself above the cap.
    const shares = cappedShares([10, 8, 1, 1], 0.4);
    expect(shares[0]).toBe(0.4);
    expect(shares[1]).toBe(0.4);
    expect(shares[2]).toBeCloseTo(0.1, 12);
    expect(shares[3]).toBeCloseTo(0.1, 12);
  });

  it('lifts the cap for fewer than 3 updates, and makes an impossible one equal shares', () => {
    expect(Array.from(cappedShares([3, 1], 0.5))).toEqual([0.75, 0.25]);
    expect(Array.from(cappedShares([5], 0.1))).toEqual([1]);
    expect(Array.from(cappedShares([10, 1, 1], 0.2)).map((v) => +v.toFixed(12))).toEqual([1 / 3, 1 / 3, 1 / 3].map((v) => +v.toFixed(12)));
  });

  it('keeps a zero weight at zero', () => {
    const shares = cappedShares([10, 0, 1, 1], 0.5);
    expect(shares[1]).toBe(0);
    expect(sum(shares)).toBeCloseTo(1, 12);
  });
});
