import { normClippedRule } from './clip.ts';
import { reduceCoordinates, sortedWeightedMedian, toFloat32 } from './coordinate-wise.ts';

/**
 * The coordinate-wise weighted median of the norm-clipped updates: while
 * attackers hold less than half the weight, every coordinate lies within
 * the honest updates' range. Its price: noisier than the mean (about 1.25x
 * the spread for Gaussian noise), and it ignores how far apart the honest
 * updates are.
 */
export const median = normClippedRule('median', 'coordinate-wise weighted median of norm-clipped updates', (updates, { shares, scales }) =>
  toFloat32(reduceCoordinates(updates, scales, shares, sortedWeightedMedian)),
);
