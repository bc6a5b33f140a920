import { describe, expect, it } from 'vitest';
import { shuffle } from '../training/random.ts';
import { CLIP_MULTIPLE, derivedTau } from './clip.ts';
import { mean } from './mean.ts';
import { distanceTo, globalNorm } from './norms.ts';
import { cappedShares } from './shares.ts';
import { StreamingMean } from './streaming-mean.ts';
import { SIZES, honestUpdates, maxAbs, maxDifference, scaled } from './test-utils.ts';
import type { WeightedUpdate } from './types.ts';

const keys = (updates: readonly WeightedUpdate[]) => updates.map((_, k) => `w${k}`);
const assignedOf = (updates: readonly WeightedUpdate[]) => new Map(updates.map((update, k) => [`w${k}`, update.weight]));

/** Folds `order` of the updates into a streaming mean opened on all of them. */
function stream(updates: readonly WeightedUpdate[], order: readonly number[], options: { maxShare: number; clipNorm: number; tau: number; hold?: boolean }) {
  const streaming = new StreamingMean(SIZES, assignedOf(updates), options);
  const verdicts = new Map(order.map((k) => [k, streaming.add(keys(updates)[k], updates[k].tensors)]));
  return { streaming, verdicts };
}

describe('StreamingMean', () => {
  it('equals the buffered mean, in any arrival order, when τ is the round own and every update arrives', () => {
    const updates = honestUpdates([16, 8, 32, 16, 4, 24], 3);
    updates[2] = { weight: 32, tensors: scaled(updates[2].tensors, -50) };
    const options = { maxShare: 0.3, clipNorm: 0, trimFraction: 0, iterations: 0 };
    const shares = cappedShares(
      updates.map((update) => update.weight),
      options.maxShare,
    );
    const tau = derivedTau(
      updates.map((update) => globalNorm(update.tensors)),
      shares,
    );
    const buffered = mean.aggregate(updates, options);
    for (const seed of [1, 2, 3]) {
      const order = shuffle(
        updates.map((_, k) => k),
        seed,
      );
      const { streaming, verdicts } = stream(updates, order, { ...options, tau });
      expect(maxDifference(streaming.result(), buffered.tensors)).toBeLessThanOrEqual(1e-6 * maxAbs(buffered.tensors));
      expect(updates.map((_, k) => verdicts.get(k)!.clipped)).toEqual(buffered.outliers);
      expect(streaming.nextTau()).toBeCloseTo(tau, 10);
    }
  });

  it('with hold, waits for the round own τ for the updates beyond the last radius: a round grown 10x is not cut back, a huge update still is', () => {
    const before = honestUpdates([16, 16, 16, 16], 7);
    const tau = stream(before, [0, 1, 2, 3], { maxShare: 1, clipNorm: 0, tau: Infinity }).streaming.nextTau();
    const grown = honestUpdates([16, 16, 16, 16], 8).map((update) => ({ ...update, tensors: scaled(update.tensors, 10 * CLIP_MULTIPLE) }));
    const options = { maxShare: 1, clipNorm: 0, trimFraction: 0, iterations: 0 };
    const buffered = mean.aggregate(grown, options);
    // Without hold every update is clipped to the last round's radius; with it, the result is the buffered mean's.
    const cut = stream(grown, [0, 1, 2, 3], { ...options, tau });
    expect([...cut.verdicts.values()].every((verdict) => verdict.clipped)).toBe(true);
    const held = stream(grown, [3, 1, 0, 2], { ...options, tau, hold: true });
    expect([...held.verdicts.values()].every((verdict) => verdict.held && !verdict.clipped)).toBe(true);
    expect(held.streaming.settle().map((verdict) => verdict.clipped)).toEqual([false, false, false, false]);
    expect(maxDifference(held.streaming.result(), buffered.tensors)).toBeLessThanOrEqual(1e-6 * maxAbs(buffered.tensors));
    // One update 1e6 times the others is held, then clipped to this round's radius when the round settles.
    const attacked = [...grown];
    attacked[0] = { weight: 16, tensors: scaled(grown[0].tensors, 1e6) };
    const hit = stream(attacked, [0, 1, 2, 3], { ...options, tau, hold: true });
    expect(hit.streaming.settle().find((verdict) => verdict.key === 'w0')!.clipped).toBe(true);
    expect(maxDifference(hit.streaming.result(), mean.aggregate(attacked, options).tensors)).toBeLessThanOrEqual(1e-6 * maxAbs(buffered.tensors) * 10);
  });

  it('bounds a huge update by the radius of the round before: its pull stays within (CLIP_MULTIPLE + 1) / 2 of the largest honest norm', () => {
    const before = honestUpdates([16, 16, 16, 16, 16], 5);
    const first = stream(before, [0, 1, 2, 3, 4], { maxShare: 0.5, clipNorm: 0, tau: Infinity });
    const tau = first.streaming.nextTau();
    const updates = honestUpdates([16, 16, 16, 16, 16], 6);
    const honest = stream(updates, [0, 1, 2, 3, 4], { maxShare: 0.5, clipNorm: 0, tau }).streaming.result();
    const largest = Math.max(...updates.map((update) => globalNorm(update.tensors)));
    updates[4] = { weight: 16, tensors: scaled(updates[4].tensors, -1e6) };
    const { streaming, verdicts } = stream(updates, [4, 0, 1, 2, 3], { maxShare: 0.5, clipNorm: 0, tau });
    expect(verdicts.get(4)!.clipped).toBe(true);
    expect(verdicts.get(4)!.deviation).toBeGreaterThan(1);
    expect(distanceTo(streaming.result(), honest)).toBeLessThanOrEqual(((CLIP_MULTIPLE + 1) / 2) * largest);
  });

  it('caps a share against the assigned weight and renormalises over the updates that came', () => {
    const updates = honestUpdates([16, 16, 96], 7);
    const options = { maxShare: 0.5, clipNorm: 1e9, tau: 0 };
    // All three: the heavy one's share is capped at one half of the assigned weight.
    const all = stream(updates, [0, 1, 2], options).streaming.result();
    const expected = Object.fromEntries(
      Object.keys(SIZES).map((name) => [
        name,
        updates[0].tensors[name].map((value, i) => 0.25 * value + 0.25 * updates[1].tensors[name][i] + 0.5 * updates[2].tensors[name][i]),
      ]),
    );
    expect(maxDifference(all, expected)).toBeLessThanOrEqual(1e-6 * maxAbs(expected));
    // The first two only: their assigned shares (a quarter each) renormalised to halves.
    const two = stream(updates, [1, 0], options).streaming.result();
    const halves = Object.fromEntries(
      Object.keys(SIZES).map((name) => [name, updates[0].tensors[name].map((value, i) => 0.5 * value + 0.5 * updates[1].tensors[name][i])]),
    );
    expect(maxDifference(two, halves)).toBeLessThanOrEqual(1e-6 * maxAbs(halves));
  });

  it('merged partials of disjoint sets of updates (as aggregators send them) equal one mean folding them all, τ included', () => {
    const updates = honestUpdates([16, 8, 32, 16, 4, 24, 12], 11);
    updates[3] = { weight: 16, tensors: scaled(updates[3].tensors, 40) };
    const options = { maxShare: 0.3, clipNorm: 0, tau: 0.5 };
    const whole = stream(updates, [0, 1, 2, 3, 4, 5, 6], options).streaming;
    // Three aggregators' partials and the coordinator's own fold, which merges them.
    const partials = [[0, 4], [2, 5, 6], [1]].map((order) => stream(updates, order, options).streaming.state());
    const coordinator = stream(updates, [3], options).streaming;
    for (const partial of partials) coordinator.merge(partial);
    expect(maxDifference(coordinator.result(), whole.result())).toBeLessThanOrEqual(1e-6 * maxAbs(whole.result()));
    expect(coordinator.nextTau()).toBeCloseTo(whole.nextTau(), 10);
    expect(() => coordinator.merge({ ...partials[0], sums: { g_w: new Float64Array(1) } })).toThrow(/merged tensor/);
  });

  it('with hold, hands its held updates over with its state (as the fold thread does): the merged mean settles them as one would', () => {
    const before = honestUpdates([16, 16, 16, 16], 7);
    const tau = stream(before, [0, 1, 2, 3], { maxShare: 1, clipNorm: 0, tau: Infinity }).streaming.nextTau();
    const updates = honestUpdates([16, 16, 16, 16], 9);
    // Two beyond the last round's radius: held, one of them far enough to be clipped at the settle.
    updates[1] = { weight: 16, tensors: scaled(updates[1].tensors, 3 * CLIP_MULTIPLE) };
    updates[2] = { weight: 16, tensors: scaled(updates[2].tensors, 1e4) };
    const options = { maxShare: 1, clipNorm: 0, tau, hold: true };
    const whole = stream(updates, [0, 1, 2, 3], options).streaming;
    const thread = stream(updates, [1, 2], options).streaming;
    const own = stream(updates, [0, 3], options).streaming;
    const held = thread.takeHeld();
    expect(held.map((update) => update.key)).toEqual(['w1', 'w2']);
    expect(thread.takeHeld()).toEqual([]);
    own.merge(thread.state());
    own.adoptHeld(held);
    const settled = own.settle();
    expect(settled).toEqual(whole.settle());
    expect(settled.find((verdict) => verdict.key === 'w2')!.clipped).toBe(true);
    expect(maxDifference(own.result(), whole.result())).toBeLessThanOrEqual(1e-6 * maxAbs(whole.result()));
    expect(() => own.adoptHeld([{ ...held[0], tensors: { g_w: new Float32Array(1) } }])).toThrow(/held tensor/);
  });

  it('refuses an update it has no assignment for, a second one, another shape, and a result of nothing', () => {
    const updates = honestUpdates([16, 16], 9);
    const streaming = new StreamingMean(SIZES, assignedOf(updates), { maxShare: 1, clipNorm: 0, tau: 1 });
    expect(() => streaming.result()).toThrow(/no update/);
    expect(() => streaming.add('stranger', updates[0].tensors)).toThrow(/no assignment/);
    streaming.add('w0', updates[0].tensors);
    expect(() => streaming.add('w0', updates[0].tensors)).toThrow(/folded already/);
    expect(() => streaming.add('w1', { g_w: new Float32Array(3) })).toThrow(/tensor/);
  });
});
