import { describe, expect, it } from 'vitest';
import { adaptiveDeadline, median, medianAbsoluteDeviation, splitBySpeed, stalenessWeight } from './schedule.ts';

describe('splitBySpeed', () => {
  it('splits in proportion to speed, adding up to the total exactly', () => {
    expect(splitBySpeed([100, 20], 120)).toEqual([100, 20]);
    expect(splitBySpeed([5, 1], 64)).toEqual([53, 11]);
    for (const total of [1, 7, 64, 1000]) expect(splitBySpeed([3, 1, 7, 0.5], total).reduce((a, b) => a + b, 0)).toBe(total);
  });
  it('gives every worker at least the minimum while the total allows it', () => {
    expect(splitBySpeed([1000, 1], 10, 1)).toEqual([9, 1]);
    expect(splitBySpeed([1, 1, 1], 2, 1).reduce((a, b) => a + b, 0)).toBe(2);
  });
  it('takes an unmeasured worker at the median of the others, and all equal when none is measured', () => {
    expect(splitBySpeed([0, 0], 64)).toEqual([32, 32]);
    expect(splitBySpeed([10, 30, 0], 60)).toEqual([10, 30, 20]);
    expect(splitBySpeed([], 10)).toEqual([]);
  });
});

describe('adaptive deadline', () => {
  const policy = { floorMs: 1000, ceilingMs: 60_000, madFactor: 4, medianFactor: 1.5 };
  it('is the ceiling with no history, median x slack + k MAD after, kept between floor and ceiling', () => {
    expect(adaptiveDeadline([], policy)).toBe(60_000);
    expect(adaptiveDeadline([2000, 2100, 1900, 2000, 2200], policy)).toBe(Math.round(2000 * 1.5 + 4 * 100));
    expect(adaptiveDeadline([10, 12, 11], policy)).toBe(1000);
    expect(adaptiveDeadline([100_000, 90_000], policy)).toBe(60_000);
  });
  it('is not inflated by one straggler', () => {
    const steady = adaptiveDeadline([1000, 1000, 1000, 1000, 1000, 1000], { ...policy, floorMs: 0 });
    expect(adaptiveDeadline([1000, 1000, 1000, 1000, 1000, 50_000], { ...policy, floorMs: 0 })).toBe(steady);
  });
  it('median and MAD', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(medianAbsoluteDeviation([1, 1, 2, 2, 4, 6, 9])).toBe(1);
  });
});

describe('stalenessWeight', () => {
  it('discounts per version behind', () => {
    expect(stalenessWeight(32, 0, 0.5)).toBe(32);
    expect(stalenessWeight(32, 2, 0.5)).toBe(8);
  });
});
