import { normClippedRule } from './clip.ts';
import type { AggregationRule } from './types.ts';
import { weightedSum } from './weighted-mean.ts';

/**
 * The weighted mean (the unbiased estimate when every update is honest), with
 * each update's norm clipped first: one huge update moves the result by at
 * most its share x (its clip radius + its own distance), but a poisoned update
 * within the radius counts in full. For trusted fleets; the robust rules are
 * for open ones.
 */
export const mean: AggregationRule = {
  ...normClippedRule('mean', 'weighted mean of norm-clipped updates (weights capped at maxShare)', (updates, { shares, scales }) =>
    weightedSum(
      updates,
      Array.from(shares, (share, k) => share * scales[k]),
    ),
  ),
  // A sum: aggregators fold it (StreamingMean), with the radius of the round before when clipNorm is 0.
  folds: true,
};
