import { clipByNorm, judge } from './clip.ts';
import type { AggregationRule } from './types.ts';
import { checkUpdates } from './updates.ts';
import { weightedSum } from './weighted-mean.ts';

/**
 * The weighted mean (the unbiased estimate when every update is honest), with
 * each update's norm clipped first: one huge update moves the result by at
 * most its share x the clip radius, but a poisoned update within the radius
 * counts in full. For trusted fleets; the robust rules are for open ones.
 */
export const mean: AggregationRule = {
  id: 'mean',
  description: 'weighted mean of norm-clipped updates (weights capped at maxShare)',
  aggregate(updates, options) {
    checkUpdates(updates, 'mean');
    const { shares, radii, scales, clipped } = clipByNorm(updates, options);
    const tensors = weightedSum(updates, Array.from(shares, (share, k) => share * scales[k]));
    return judge(updates, tensors, radii, clipped);
  },
};
