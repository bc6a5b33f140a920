import { describe, expect, it } from 'vitest';
import { shuffle } from '../training/random.ts';
import { CLIP_MULTIPLE, listRules, type AggregationRule, type WeightedUpdate } from './index.ts';
import { distanceTo, globalNorm } from './norms.ts';
import { OPTIONS, honestUpdates, maxAbs, maxDifference, scaled } from './test-utils.ts';

const rules = listRules();

describe('aggregation rule registry contents', () => {
  it('registers mean, trimmed-mean, median and centered-clip', () => {
    expect(rules.map((rule) => rule.id)).toEqual(['mean', 'trimmed-mean', 'median', 'centered-clip']);
    for (const rule of rules) expect(rule.description.length, rule.id).toBeGreaterThan(10);
  });
});

/**
 * How far one update holding less than half the weight, however large, may
 * move the result: (CLIP_MULTIPLE + 1) / 2 x the largest honest norm M. For
 * mean it follows: the update is clipped to CLIP_MULTIPLE x the lower median
 * norm (at most CLIP_MULTIPLE x M; the lower median is an honest norm while
 * the update holds less than half the weight), so it moves by at most
 * share x (CLIP_MULTIPLE + 1) x M from where it was. The per-coordinate rules
 * stay near the honest values at every coordinate, and centered-clip's centre
 * settles where the honest updates' pull balances the clipped one's. Measured
 * over the grid below, as a fraction of this bound: mean 0.66, trimmed-mean
 * 0.55, median 0.42, centered-clip 0.92 (three equal updates, noise ten times
 * the signal: two honest updates barely outpull a third held at 4 spreads).
 */
const INFLUENCE_BOUND = (CLIP_MULTIPLE + 1) / 2;

describe.each(rules)('aggregation rule $id', (rule: AggregationRule) => {
  it('gives one value per tensor element, one verdict per update, and leaves its inputs alone', () => {
    const updates = honestUpdates([16, 8, 32, 16, 4], 1);
    const copies = updates.map((update) => structuredClone(update.tensors));
    const result = rule.aggregate(updates, OPTIONS);
    expect(Object.keys(result.tensors)).toEqual(Object.keys(updates[0].tensors));
    for (const [name, values] of Object.entries(result.tensors)) {
      expect(values, name).toBeInstanceOf(Float32Array);
      expect(values.length, name).toBe(updates[0].tensors[name].length);
      expect(values.every(Number.isFinite), name).toBe(true);
    }
    expect(result.outliers).toHaveLength(5);
    expect(result.deviations).toHaveLength(5);
    updates.forEach((update, k) => expect(update.tensors).toEqual(copies[k]));
  });

  it('does not depend on the order of the updates', () => {
    const updates = honestUpdates([16, 8, 32, 16, 4, 12, 20], 2);
    updates[3] = { ...updates[3], tensors: scaled(updates[3].tensors, -50) };
    const forward = rule.aggregate(updates, OPTIONS);
    const order = Array.from(
      shuffle(
        Uint32Array.from(updates, (_, k) => k),
        5,
      ),
    );
    const mixed = rule.aggregate(
      order.map((k) => updates[k]),
      OPTIONS,
    );
    expect(maxDifference(mixed.tensors, forward.tensors)).toBeLessThanOrEqual(1e-6 * maxAbs(forward.tensors));
    order.forEach((k, position) => {
      expect(mixed.outliers[position], `update ${k}`).toBe(forward.outliers[k]);
      expect(mixed.deviations[position]).toBeCloseTo(forward.deviations[k], 6);
    });
  });

  it('gives equal updates back, whatever their weights, with no outlier', () => {
    const [one] = honestUpdates([16], 3);
    for (const weights of [[1], [5, 5], [1, 2, 3], [7, 1, 1, 1, 30]]) {
      const result = rule.aggregate(
        weights.map((weight) => ({ weight, tensors: one.tensors })),
        { ...OPTIONS, maxShare: 0.4 },
      );
      expect(maxDifference(result.tensors, one.tensors), `weights ${weights}`).toBeLessThanOrEqual(1e-6 * maxAbs(one.tensors));
      expect(result.outliers).toEqual(weights.map(() => false));
      expect(result.deviations).toEqual(weights.map(() => 0));
    }
  });

  it('takes an update of weight 2 as the same update twice (maxShare 1; clipNorm set, or nobody clipped)', () => {
    // With a derived radius each update's radius follows its share (clipRadii: a batch of 2 samples is less noisy
    // than each of two batches of 1), so an update clipped in one split may not be in the other: compare with a
    // fixed radius when one update is far out, and with the derived one when all are honest.
    const honest = honestUpdates([2, 1, 3, 1, 1], 4);
    const farOut = honest.map((update, k) => (k === 4 ? { ...update, tensors: scaled(update.tensors, 30) } : update));
    for (const [updates, options] of [
      [farOut, { ...OPTIONS, clipNorm: 8 }],
      [honest, OPTIONS],
    ] as const) {
      const split: WeightedUpdate[] = updates.flatMap((update) => Array.from({ length: update.weight }, () => ({ weight: 1, tensors: update.tensors })));
      const whole = rule.aggregate(updates, options);
      const copies = rule.aggregate(split, options);
      expect(maxDifference(whole.tensors, copies.tensors), `clipNorm ${options.clipNorm}`).toBeLessThanOrEqual(1e-6 * maxAbs(whole.tensors));
      // And the weights count: giving the first update more weight moves the result toward it.
      const heavier = rule.aggregate(
        updates.map((update, k) => (k === 0 ? { ...update, weight: 6 } : update)),
        options,
      );
      expect(distanceTo(heavier.tensors, updates[0].tensors)).toBeLessThan(distanceTo(whole.tensors, updates[0].tensors));
    }
  });

  it('bounds the influence of one update, however large, holding less than half the weight', () => {
    const cases = [
      { weights: [1, 1, 1], noise: 0.2 },
      { weights: [1, 1, 1], noise: 10 },
      { weights: [16, 16, 16, 16, 16], noise: 1 },
      { weights: [4, 64, 16, 32], noise: 3 },
      { weights: [64, 4, 16, 32, 8, 48, 12, 20], noise: 0.5 },
      { weights: [1, 16, 16, 16, 16], noise: 5 },
    ];
    for (const [c, { weights, noise }] of cases.entries()) {
      for (const options of [OPTIONS, { ...OPTIONS, maxShare: 0.3, trimFraction: 0.3 }]) {
        const updates = honestUpdates(weights, 10 + c, noise);
        const largestNorm = Math.max(...updates.map((update) => globalNorm(update.tensors)));
        const clean = rule.aggregate(updates, options);
        for (const factor of [1e6, -1e6, -1e4]) {
          const attacked = updates.map((update, k) => (k === 0 ? { ...update, tensors: scaled(update.tensors, factor) } : update));
          const result = rule.aggregate(attacked, options);
          const moved = distanceTo(result.tensors, clean.tensors);
          expect(moved, `case ${c} x${factor}`).toBeLessThanOrEqual(INFLUENCE_BOUND * largestNorm);
          expect(result.outliers[0], `case ${c} x${factor}: the attacker is an outlier`).toBe(true);
          expect(result.deviations[0]).toBeGreaterThan(1);
        }
      }
    }
  });

  it('saturates: a huge update moves the result the same whether it is 1e4 or 1e6 times too large', () => {
    const updates = honestUpdates([16, 16, 16, 16, 16], 20);
    const at = (factor: number) =>
      rule.aggregate(
        updates.map((update, k) => (k === 2 ? { ...update, tensors: scaled(update.tensors, factor) } : update)),
        OPTIONS,
      ).tensors;
    expect(maxDifference(at(1e6), at(1e4))).toBeLessThanOrEqual(1e-3 * maxAbs(at(1e4)));
  });

  it('reports honest updates of very different batch sizes as within the radius', () => {
    for (const [seed, weights] of [
      [30, [64, 4, 16, 32]],
      [31, [16, 16, 16]],
      [32, [64, 4, 16, 32, 8, 48, 12, 20]],
    ] as const) {
      for (const noise of [0.1, 1, 10]) {
        const result = rule.aggregate(honestUpdates(weights, seed, noise), { ...OPTIONS, maxShare: 0.5 });
        expect(result.outliers, `weights ${weights}, noise ${noise}: deviations ${result.deviations.map((d) => d.toFixed(2))}`).toEqual(
          weights.map(() => false),
        );
      }
    }
  });

  it('reports a sign-flipped update beyond the radius and the honest ones within it', () => {
    const updates = honestUpdates([16, 16, 16, 16, 16], 40, 0.3);
    updates[1] = { ...updates[1], tensors: scaled(updates[1].tensors, -10) };
    const result = rule.aggregate(updates, OPTIONS);
    expect(result.outliers).toEqual([false, true, false, false, false]);
    expect(Math.max(...result.deviations.filter((_, k) => k !== 1))).toBeLessThan(1);
  });

  it('throws on no updates, zero total weight and tensors that differ', () => {
    const [one] = honestUpdates([1], 50);
    expect(() => rule.aggregate([], OPTIONS)).toThrow(/no updates/);
    expect(() => rule.aggregate([{ weight: 0, tensors: one.tensors }], OPTIONS)).toThrow(/sum to zero/);
    expect(() => rule.aggregate([{ weight: Number.NaN, tensors: one.tensors }], OPTIONS)).toThrow(/weight/);
    expect(() => rule.aggregate([one, { weight: 1, tensors: { g_w: one.tensors.g_w } }], OPTIONS)).toThrow(/different tensors/);
    expect(() => rule.aggregate([one, { weight: 1, tensors: { ...one.tensors, d_b: new Float32Array(3) } }], OPTIONS)).toThrow(/differs in length/);
  });
});
