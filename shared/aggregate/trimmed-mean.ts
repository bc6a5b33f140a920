import { normClippedRule } from './clip.ts';
import { reduceCoordinates, toFloat32, type CoordinateReducer } from './coordinate-wise.ts';

/** Just below one half: trimming half at each end would leave nothing (the median is its own rule). */
export const MAX_TRIM_FRACTION = 0.49;

/**
 * Per coordinate: drops `fraction` of the total weight from each end of the
 * sorted values and averages the rest by weight. An update straddling a cut
 * keeps the part of its weight inside, so weight 2 acts as the same update
 * twice, and a fraction of 0 is the weighted mean.
 */
export function trimmedMeanOf(fraction: number): CoordinateReducer {
  return (values, shares, count) => {
    let total = 0;
    for (let k = 0; k < count; k++) total += shares[k];
    const low = fraction * total;
    const high = total - low;
    let below = 0;
    let sum = 0;
    for (let k = 0; k < count; k++) {
      const above = below + shares[k];
      // The part of [below, above] inside [low, high].
      const kept = Math.min(above, high) - Math.max(below, low);
      if (kept > 0) sum += kept * values[k];
      below = above;
    }
    return sum / (high - low);
  };
}

/**
 * The coordinate-wise trimmed mean of the norm-clipped updates: robust to
 * attackers holding less than trimFraction of the weight, less noisy than
 * the median. Trimming is per coordinate, so every update is trimmed
 * somewhere; an update is reported as an outlier when it was clipped or ends
 * beyond the clip radius from the result.
 */
export const trimmedMean = normClippedRule(
  'trimmed-mean',
  'coordinate-wise mean after trimming trimFraction of the weight at each end, of norm-clipped updates',
  (updates, { shares, scales }, { trimFraction }) => {
    if (!(trimFraction >= 0 && trimFraction <= MAX_TRIM_FRACTION))
      throw new Error(`trimmed-mean: trimFraction ${trimFraction} is outside [0, ${MAX_TRIM_FRACTION}]`);
    return toFloat32(reduceCoordinates(updates, scales, shares, trimmedMeanOf(trimFraction)));
  },
);
