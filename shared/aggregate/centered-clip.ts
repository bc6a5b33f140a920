import { clipByNorm, clipRadii, deviationOf } from './clip.ts';
import { reduceCoordinates, sortedWeightedMedian, toFloat32 } from './coordinate-wise.ts';
import { distanceTo } from './norms.ts';
import type { AggregationRule, WeightedUpdate } from './types.ts';
import { checkUpdates } from './updates.ts';
import { addScaled } from './weighted-mean.ts';

/** Iterations stop early once a step moves the centre by less than this many radii. */
const CONVERGED = 1e-6;

/**
 * CenteredClip (Karimireddy et al. 2021, as hivemind uses it): from a robust
 * start (the coordinate-wise weighted median of the norm-clipped updates),
 * repeat
 *   v <- v + Σ_k share_k · clip_{τ_k}(x_k - v)
 * where clip_τ scales a vector down to norm τ when it is longer. Nobody
 * beyond their radius: one step reaches the weighted mean and the next stays
 * there. An attacker pulls the centre by at most share x radius per
 * iteration, and is reported as an outlier when it ends beyond its radius.
 *
 * With clipNorm set, every τ_k is clipNorm (hivemind's form); derived, each
 * radius follows the update's expected noise (see clipRadii), and with equal
 * weights all are CLIP_MULTIPLE x the median distance from the start.
 */
export const centeredClip: AggregationRule = {
  id: 'centered-clip',
  description: 'CenteredClip: iterated mean of deviations clipped to tau around a centre starting at the coordinate-wise median',
  aggregate(updates, options) {
    checkUpdates(updates, 'centered-clip');
    // The start: the weighted median of the updates with norms clipped to one derived radius. The plain median is
    // no start when one update holds exactly half the weight: it is then the midpoint between that update and the
    // rest, however far away. One radius for all (not one per share) keeps the start, and so the result with
    // clipNorm set, the same when an update of weight 2 comes as two of weight 1.
    const { shares, scales } = clipByNorm(updates, { ...options, clipNorm: 0 }, false);
    const centre = reduceCoordinates(updates, scales, shares, sortedWeightedMedian);
    let distances = updates.map((update) => distanceTo(update.tensors, centre));
    const radii = clipRadii(distances, shares, options.clipNorm);
    // Every update at the start (all equal): nothing to move, and radii of 0 to divide by.
    const iterations = distances.some((distance) => distance > 0) ? options.iterations : 0;
    for (let iteration = 0; iteration < iterations; iteration++) {
      const coefficients = distances.map((distance, k) => shares[k] * (distance > radii[k] ? radii[k] / distance : 1));
      const step = stepCentre(updates, centre, coefficients);
      distances = updates.map((update) => distanceTo(update.tensors, centre));
      if (step <= CONVERGED * Math.min(...radii)) break;
    }
    const deviations = distances.map((distance, k) => deviationOf(distance, radii[k]));
    return { tensors: toFloat32(centre), outliers: deviations.map((deviation) => deviation > 1), deviations };
  },
};

/**
 * v <- v + Σ c_k (x_k - v) = (1 - Σ c_k) v + Σ c_k x_k, in place, in float64;
 * returns the step's norm.
 */
function stepCentre(updates: readonly WeightedUpdate[], centre: Record<string, Float64Array>, coefficients: readonly number[]): number {
  const keep = 1 - coefficients.reduce((sum, c) => sum + c, 0);
  let squared = 0;
  for (const [name, v] of Object.entries(centre)) {
    const next = new Float64Array(v.length);
    for (let k = 0; k < updates.length; k++) if (coefficients[k] !== 0) addScaled(next, updates[k].tensors[name], coefficients[k]);
    squared += moveCentre(v, next, keep);
  }
  return Math.sqrt(squared);
}

/** v <- keep x v + next, in place; returns the squared length of the move. */
function moveCentre(v: Float64Array, next: Float64Array, keep: number): number {
  let squared = 0;
  for (let i = 0; i < v.length; i++) {
    const moved = keep * v[i] + next[i];
    squared += (moved - v[i]) * (moved - v[i]);
    v[i] = moved;
  }
  return squared;
}
