import type { NamedArrays } from '../codec/types.ts';
import { distanceTo, globalNorm } from './norms.ts';
import { cappedShares } from './shares.ts';
import type { Aggregate, AggregationOptions, AggregationRule, WeightedUpdate } from './types.ts';
import { checkUpdates } from './updates.ts';

/**
 * A derived clip radius is this many times the round's typical length (the
 * weighted lower median norm, or for centered-clip distance from its start,
 * each scaled to its batch as below): honest updates stay well inside, while
 * an attacker's update counts for at most 4 honest ones.
 */
export const CLIP_MULTIPLE = 4;

/**
 * Shares down to 1/16 of an equal one keep a radius that grows with their
 * noise: a 16x batch ratio, as throughput batching gives a browser tab beside
 * a GPU box. Below it the radius stops growing, so an attacker split into
 * many light workers pulls at most sqrt(16) = 4x what equal shares would.
 */
const LIGHTEST = 16;

/** Past a million radii the figure says nothing more; kept finite so logs and JSON stay numbers. */
const MAX_DEVIATION = 1e6;

/**
 * The lower weighted median: the smallest value whose cumulative share
 * reaches half. Lower, not interpolated, so with two updates the larger one
 * (an attacker's) cannot set the radius it is clipped to.
 */
export function weightedLowerMedian(values: ArrayLike<number>, shares: ArrayLike<number>): number {
  const order = Array.from({ length: values.length }, (_, k) => k).sort((a, b) => values[a] - values[b]);
  let total = 0;
  for (let k = 0; k < shares.length; k++) total += shares[k];
  let cumulative = 0;
  for (const k of order) {
    cumulative += shares[k];
    // The tolerance: shares such as 1/6 do not add up to exactly one half in floating point.
    if (cumulative >= total / 2 - total * 1e-12) return values[k];
  }
  return values[order[order.length - 1]];
}

/**
 * Each update's clip radius for `lengths` (norms, or distances from a centre):
 * clipNorm when set; else τ / sqrt(share_k), the share floored at 1/16 of an
 * equal one, with τ = CLIP_MULTIPLE x the lower weighted median of
 * length_k · sqrt(share_k) over the updates of non-zero length.
 *
 * Why scaled by the share: an update over fewer samples is noisier (noise
 * ~ 1/sqrt(samples)), so lies farther out. One radius for all would be set by
 * the heavy updates' small noise and clip, and flag as outliers, honest light
 * ones (a browser tab beside a GPU box). With equal shares every radius is
 * CLIP_MULTIPLE x the median length. The price: with a derived radius an
 * update of weight 2 is not the same as the update twice (a batch of 2
 * samples is not two copies of a batch of 1); with clipNorm set, it is.
 *
 * `byShare` false gives one radius for all, CLIP_MULTIPLE x the lower
 * weighted median length, which does not depend on how the weight is split.
 *
 * Lengths of 0 are left out of the median: with two updates of unequal weight
 * centered-clip starts at the heavier one, and its distance of 0 would give a
 * radius of 0 (the lighter update ignored rather than averaged).
 */
export function clipRadii(lengths: readonly number[], shares: Float64Array, clipNorm: number, byShare = true): number[] {
  if (clipNorm > 0) return lengths.map(() => clipNorm);
  const tau = derivedTau(lengths, shares, byShare);
  return byShare ? radiiFromTau(tau, shares) : lengths.map(() => tau);
}

/** How far a share's noise reaches: sqrt(share), the share floored at 1/LIGHTEST of an equal one among `count`. */
export function noiseScale(share: number, count: number): number {
  return Math.sqrt(Math.max(share, 1 / (LIGHTEST * count)));
}

/** τ of clipRadii: CLIP_MULTIPLE x the lower weighted median of length · noiseScale over the lengths above 0 (0 when none). */
export function derivedTau(lengths: readonly number[], shares: Float64Array, byShare = true): number {
  const scales = Array.from(shares, (share) => (byShare ? noiseScale(share, shares.length) : 1));
  const counted = lengths.flatMap((length, k) => (length > 0 && shares[k] > 0 ? [k] : []));
  if (counted.length === 0) return 0;
  return (
    CLIP_MULTIPLE *
    weightedLowerMedian(
      counted.map((k) => lengths[k] * scales[k]),
      counted.map((k) => shares[k]),
    )
  );
}

/** Each share's clip radius from τ: τ / noiseScale (see clipRadii). */
export function radiiFromTau(tau: number, shares: ArrayLike<number>): number[] {
  return Array.from(shares, (share) => tau / noiseScale(share, shares.length));
}

/** A distance in clip radii, finite (0 at the centre, capped far beyond it). */
export function deviationOf(distance: number, radius: number): number {
  return distance === 0 ? 0 : Math.min(MAX_DEVIATION, distance / radius);
}

/**
 * The rule's answer for `tensors`: each update's distance to them in its clip
 * radii, and as outliers those the rule clipped or that lie beyond the radius.
 */
export function judge(updates: readonly WeightedUpdate[], tensors: NamedArrays, radii: readonly number[], clipped: readonly boolean[]): Aggregate {
  const deviations = updates.map((update, k) => deviationOf(distanceTo(update.tensors, tensors), radii[k]));
  return { tensors, outliers: deviations.map((deviation, k) => clipped[k] || deviation > 1), deviations };
}

/** What the norm-clipping rules start from: capped shares, the radii, and each update's clip factor. */
export interface NormClip {
  shares: Float64Array;
  radii: number[];
  /** min(1, radius / norm) per update. */
  scales: Float64Array;
  /** True for the updates whose norm was above their radius. */
  clipped: boolean[];
}

/** Shares capped by maxShare and each update's norm clipped to clipNorm (or its derived radius, see clipRadii). */
export function clipByNorm(updates: readonly WeightedUpdate[], options: AggregationOptions, byShare = true): NormClip {
  const shares = cappedShares(
    updates.map((update) => update.weight),
    options.maxShare,
  );
  const norms = updates.map((update) => globalNorm(update.tensors));
  const radii = clipRadii(norms, shares, options.clipNorm, byShare);
  const scales = Float64Array.from(norms, (norm, k) => (norm > radii[k] ? radii[k] / norm : 1));
  return { shares, radii, scales, clipped: Array.from(scales, (scale) => scale < 1) };
}

/**
 * A rule of the common shape: check the updates, cap shares and clip norms,
 * `combine` the clipped updates, then judge each against the result.
 */
export function normClippedRule(
  id: string,
  description: string,
  combine: (updates: readonly WeightedUpdate[], clip: NormClip, options: AggregationOptions) => NamedArrays,
): AggregationRule {
  return {
    id,
    description,
    aggregate(updates, options) {
      checkUpdates(updates, id);
      const clip = clipByNorm(updates, options);
      return judge(updates, combine(updates, clip, options), clip.radii, clip.clipped);
    },
  };
}
