import { describe, expect, it } from 'vitest';
import { createUniform } from '../training/random.ts';
import {
  CAPPED_FROM_WORKERS,
  adaptiveDeadline,
  creditedComputeMs,
  fillInProportion,
  median,
  medianAbsoluteDeviation,
  splitBySpeed,
  stalenessWeight,
  type ShareInput,
  type SharePolicy,
} from './schedule.ts';

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
/** No cap and no step: the proportional split alone. */
const unbounded: SharePolicy = { maxShare: 1, maxGrowth: 1e9 };
const defaults: SharePolicy = { maxShare: 0.5, maxGrowth: 1.5 };
/** Workers measured at these speeds, each with a previous batch large enough not to bound it. */
const measured = (speeds: number[], previous = 1e6): ShareInput[] => speeds.map((speed) => ({ speed, previous }));

describe('splitBySpeed, proportional', () => {
  it('splits in proportion to speed, adding up to the total exactly', () => {
    expect(splitBySpeed(measured([100, 20]), 120, unbounded)).toEqual([100, 20]);
    expect(splitBySpeed(measured([5, 1]), 64, unbounded)).toEqual([53, 11]);
    for (const total of [1, 7, 64, 1000]) expect(sum(splitBySpeed(measured([3, 1, 7, 0.5]), total, unbounded))).toBe(total);
  });
  it('gives every worker at least the minimum while the total allows it', () => {
    expect(splitBySpeed(measured([1000, 1]), 10, { ...unbounded, minimum: 1 })).toEqual([9, 1]);
    expect(sum(splitBySpeed(measured([1, 1, 1]), 2, unbounded))).toBe(2);
  });
  it('takes an unmeasured worker at the median of the others, and all equal when none is measured', () => {
    expect(splitBySpeed([{ speed: 0 }, { speed: 0 }], 64, unbounded)).toEqual([32, 32]);
    expect(splitBySpeed([...measured([10, 30]), { speed: 0, previous: 1e6 }], 60, unbounded)).toEqual([10, 30, 20]);
    expect(splitBySpeed([], 10, unbounded)).toEqual([]);
  });
});

describe('splitBySpeed, bounded', () => {
  it('caps a worker at half of the round with 3 or more workers; with 2 or alone, only the speeds split it', () => {
    expect(splitBySpeed(measured([100, 1, 1, 1]), 128, defaults)).toEqual([64, 22, 21, 21]);
    expect(splitBySpeed(measured([100, 1, 1]), 33, defaults)).toEqual([16, 9, 8]);
    expect(splitBySpeed(measured([100, 1]), 33, defaults)).toEqual([32, 1]);
    expect(splitBySpeed(measured([100]), 33, defaults)).toEqual([33]);
    // A smaller cap than 1/n is raised to 1/n: the round must be filled.
    expect(splitBySpeed(measured([100, 1, 1, 1]), 128, { ...defaults, maxShare: 0 })).toEqual([32, 32, 32, 32]);
  });
  it('grows a batch by at most maxGrowth per round, and starts a new worker at most at the equal share', () => {
    // The fast worker would take 90 of 128; from 32 it may reach 48 this round.
    expect(splitBySpeed([{ speed: 10, previous: 32 }, ...measured([1, 1, 1], 32)], 128, { maxShare: 1, maxGrowth: 1.5 })[0]).toBe(48);
    // New, and claiming 1e300 in its hello: the equal share, no more.
    expect(splitBySpeed([{ speed: 0, hint: 1e300 }, ...measured([1, 1, 1], 32)], 128, unbounded)[0]).toBe(32);
    // A hint may lower a new worker's share: one that says it is slow is believed.
    expect(splitBySpeed([{ speed: 0, hint: 0.5 }, ...measured([1, 1, 1], 40)], 128, unbounded)[0]).toBe(18);
    // Shrinking is not bounded: a worker measured slow drops to its share at once.
    expect(splitBySpeed([{ speed: 1, previous: 32 }, ...measured([9, 9, 9], 40)], 112, unbounded)[0]).toBe(4);
  });
  it('lets the growth bound give way when the round cannot be filled otherwise (a large worker left), never the cap', () => {
    // The leaver had 64 of 128; the three left had 64 between them and must fill 96 at x1.1 at most.
    const shares = splitBySpeed(
      [
        { speed: 2, previous: 22 },
        { speed: 1, previous: 21 },
        { speed: 1, previous: 21 },
      ],
      96,
      { maxShare: 0.5, maxGrowth: 1.1 },
    );
    expect(sum(shares)).toBe(96);
    // Each is first filled to its step limit (24, 23, 23); the 26 left over go in proportion to speed, under the cap.
    expect(shares).toEqual([37, 30, 29]);
  });
  it('keeps a liar to the cap, whatever it claims or is measured at', () => {
    for (const liar of [
      { speed: 1e300, previous: 1e6 },
      { speed: Number.MAX_VALUE, previous: 64 },
      { speed: 0, hint: 1e300 },
      { speed: Infinity, hint: Infinity },
    ]) {
      const shares = splitBySpeed([liar, ...measured([1, 1, 1], 32)], 128, defaults);
      expect(shares[0]).toBeLessThanOrEqual(64);
      expect(sum(shares)).toBe(128);
    }
    // Reporting 0 ms of compute and all of its time as transfer: timed at 4/5 of its real finish time at the least.
    expect(creditedComputeMs(1000, 1e9, 0.2)).toBe(800);
    expect(creditedComputeMs(1000, 40, 0.2)).toBe(960);
    expect(creditedComputeMs(0, Number.NaN, 0.2)).toBe(1);
  });
  it('holds for any fleet: sum exact, cap respected, growth bounded whenever the round can be filled within it', () => {
    const random = createUniform(11);
    for (let trial = 0; trial < 1000; trial++) {
      const count = 1 + Math.floor(random() * 12);
      const total = Math.floor(random() * 600);
      const policy: SharePolicy = { maxShare: random(), maxGrowth: 1 + random() * 2, minimum: 1 };
      const speeds = [0, 1e-6, 1, 3, 1e300];
      const workers: ShareInput[] = Array.from({ length: count }, () => ({
        speed: random() < 0.2 ? speeds[Math.floor(random() * speeds.length)] : random() * 100,
        hint: random() < 0.3 ? random() * 1e3 : undefined,
        previous: random() < 0.2 ? undefined : Math.floor(random() * 100),
      }));
      const shares = splitBySpeed(workers, total, policy);
      const context = JSON.stringify({ workers, total, policy, shares });
      expect(sum(shares), context).toBe(total);
      const cap = count < CAPPED_FROM_WORKERS ? total : Math.max(Math.floor(policy.maxShare * total), Math.ceil(total / count));
      const step = workers.map((worker) =>
        Math.min(cap, worker.previous === undefined ? Math.ceil(total / count) : Math.max(worker.previous + 1, Math.floor(worker.previous * policy.maxGrowth))),
      );
      for (const [i, share] of shares.entries()) {
        expect(share, context).toBeGreaterThanOrEqual(Math.min(1, Math.floor(total / count)));
        expect(share, context).toBeLessThanOrEqual(cap);
        if (sum(step) >= total) expect(share, context).toBeLessThanOrEqual(step[i]);
      }
    }
  });
  it('brings honest workers to their proportional shares within a few rounds, fast or slow', () => {
    const total = 128;
    for (const speeds of [
      [4, 4, 4, 1],
      [1, 1, 1, 2],
      [1, 2, 3, 4],
    ]) {
      let previous: (number | undefined)[] = speeds.map(() => undefined);
      let shares: number[] = [];
      for (let round = 0; round < 4; round++) {
        // The first round has no measurement; later ones see the true speeds.
        shares = splitBySpeed(
          speeds.map((speed, i) => ({ speed: round === 0 ? 0 : speed, previous: previous[i] })),
          total,
          defaults,
        );
        previous = shares;
      }
      const proportional = splitBySpeed(measured(speeds), total, defaults);
      for (const [i, share] of shares.entries()) expect(Math.abs(share - proportional[i]), `${speeds}: ${shares} vs ${proportional}`).toBeLessThanOrEqual(1);
    }
  });
});

describe('fillInProportion', () => {
  it('holds entries at their limits and shares the rest, placing no more than the limits allow', () => {
    expect(fillInProportion([1, 1, 1], 90, [10, 100, 100])).toEqual([10, 40, 40]);
    expect(fillInProportion([1, 1], 90, [10, 20])).toEqual([10, 20]);
    expect(fillInProportion([1, 3], 0, [10, 20])).toEqual([0, 0]);
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
