/**
 * Scheduling math, pure: how a round's samples are split among workers of
 * different speeds, and how long a round may wait. The runner applies it.
 */

/**
 * Splits `total` samples among workers in proportion to their speed, so all
 * finish together. A worker with no measurement yet is taken at the median
 * of the others (or all equal when none is measured). Every worker gets at
 * least `minimum`; the shares add up to `total` exactly (largest remainders).
 */
export function splitBySpeed(speeds: readonly number[], total: number, minimum = 1): number[] {
  if (speeds.length === 0) return [];
  const measured = speeds.filter((speed) => speed > 0 && Number.isFinite(speed));
  const fallback = measured.length > 0 ? median(measured) : 1;
  const effective = speeds.map((speed) => (speed > 0 && Number.isFinite(speed) ? speed : fallback));
  const floor = Math.min(minimum, Math.floor(total / speeds.length));
  const sum = effective.reduce((a, b) => a + b, 0);
  const exact = effective.map((speed) => (total * speed) / sum);
  const shares = exact.map((value) => Math.max(floor, Math.floor(value)));
  // Raising the slowest to the minimum may overshoot: take it back from the largest shares.
  let excess = shares.reduce((a, b) => a + b, 0) - total;
  while (excess > 0) {
    const largest = shares.indexOf(Math.max(...shares));
    shares[largest] -= 1;
    excess -= 1;
  }
  // Rounding down leaves a few samples: they go to the largest remainders.
  let left = total - shares.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((value, i) => ({ i, remainder: value - Math.floor(value) })).sort((a, b) => b.remainder - a.remainder || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % byRemainder.length, left--) shares[byRemainder[k].i] += 1;
  return shares;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Median absolute deviation: a spread that one straggler cannot inflate. */
export function medianAbsoluteDeviation(values: readonly number[]): number {
  const center = median(values);
  return median(values.map((value) => Math.abs(value - center)));
}

export interface DeadlinePolicy {
  floorMs: number;
  ceilingMs: number;
  /** How many MADs above the median a worker may take before the round stops waiting. */
  madFactor: number;
  /** Slack on the median itself, since batches are sized to finish together but speeds drift. */
  medianFactor: number;
}

/**
 * The next round's deadline from recent finish times (assignment to update,
 * in ms): median × slack + k·MAD, kept between the floor and the ceiling.
 * With no history yet, the ceiling: the first rounds wait for everyone.
 */
export function adaptiveDeadline(recentFinishMs: readonly number[], policy: DeadlinePolicy): number {
  if (recentFinishMs.length === 0) return policy.ceilingMs;
  const deadline = median(recentFinishMs) * policy.medianFactor + policy.madFactor * medianAbsoluteDeviation(recentFinishMs);
  return Math.round(Math.min(policy.ceilingMs, Math.max(policy.floorMs, deadline)));
}

/** The weight a late update keeps: its samples, discounted by how many versions old its weights are. */
export function stalenessWeight(samples: number, versionsBehind: number, decay: number): number {
  return samples * decay ** versionsBehind;
}
