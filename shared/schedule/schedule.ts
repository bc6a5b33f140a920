/**
 * Scheduling math, pure: how a round's samples are split among workers of
 * different speeds, and how long a round may wait. The runner applies it.
 */

/**
 * The share cap applies from this many workers on. With 2, any cap of at least
 * half (the least that can fill a round) would force equal shares whatever the
 * speeds, and no rule can outvote one of two anyway; the growth bound still holds.
 */
export const CAPPED_FROM_WORKERS = 3;

/** One worker as the split sees it. */
export interface ShareInput {
  /** Samples per second the coordinator measured; 0 while the worker has no measured round. */
  speed: number;
  /** The worker's own claim from its hello: only read while it is unmeasured, and only to lower its share. */
  hint?: number;
  /** Its batch in the last round it was planned in; absent for a worker new to the job. */
  previous?: number;
}

/** How far one worker's share may go. */
export interface SharePolicy {
  /** The most of a round one worker may get, once CAPPED_FROM_WORKERS or more share it; never below 1/n. */
  maxShare: number;
  /** The most a worker's batch may grow from one round to the next (a factor, or one sample when that is more). */
  maxGrowth: number;
  /** Every worker gets at least this many samples while the total allows. */
  minimum?: number;
}

/**
 * Splits `total` samples among workers in proportion to their measured
 * speed, so all finish together, within two bounds: no worker gets more than
 * the cap, and no batch grows faster than `maxGrowth` per round (a new worker
 * starts at most at the equal share). An unmeasured worker counts at the
 * median measured speed, or at its hint when that is lower (all equal when
 * none is measured). The growth bound gives way only when the round could not
 * be filled otherwise (a worker with a large share left); the cap never does.
 * The shares add up to `total` exactly.
 */
export function splitBySpeed(workers: readonly ShareInput[], total: number, policy: SharePolicy): number[] {
  const count = workers.length;
  if (count === 0) return [];
  const usable = (value: number | undefined): value is number => value !== undefined && value > 0 && Number.isFinite(value);
  const measured = workers.map((worker) => worker.speed).filter(usable);
  const fallback = measured.length > 0 ? median(measured) : 1;
  const speeds = workers.map((worker) =>
    usable(worker.speed) ? worker.speed : measured.length > 0 && usable(worker.hint) ? Math.min(worker.hint, fallback) : fallback,
  );
  // Relative to the fastest, so that no sum overflows; a worker 1e12 times slower is as good as idle, not a denormal.
  const fastest = Math.max(...speeds);
  const weights = speeds.map((speed) => Math.max(speed / fastest, 1e-12));
  const equal = Math.ceil(total / count);
  // Whole samples: ceil(total / n) keeps n caps above the total when maxShare x n < 1.
  const cap = count < CAPPED_FROM_WORKERS ? total : Math.max(Math.floor(policy.maxShare * total), equal);
  const stepLimit = workers.map((worker) =>
    Math.min(cap, worker.previous === undefined ? equal : Math.max(worker.previous + 1, Math.floor(worker.previous * policy.maxGrowth))),
  );
  const bounded = fillInProportion(weights, total, stepLimit);
  // What the growth bound left unplaced goes to the workers below the cap, still in proportion to speed.
  // (Left-overs below 1e-9 are rounding noise: they must not lift a worker's limit to the cap.)
  const unplaced = total - sum(bounded);
  const extra =
    unplaced > 1e-9
      ? fillInProportion(
          weights,
          unplaced,
          bounded.map((share) => cap - share),
        )
      : bounded.map(() => 0);
  const exact = bounded.map((share, i) => share + extra[i]);
  const limits = extra.map((share, i) => (share > 0 ? cap : stepLimit[i]));
  const shares = roundPreservingTotal(exact, total, limits);
  // A worker left with fewer than the minimum takes it from the largest share.
  const floor = Math.min(policy.minimum ?? 1, Math.floor(total / count));
  for (let i = 0; i < count; i++) {
    while (shares[i] < floor) {
      shares[shares.indexOf(Math.max(...shares))] -= 1;
      shares[i] += 1;
    }
  }
  return shares;
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/**
 * Places `total` in proportion to `weights` with no entry above its limit
 * (water-filling): entries that would pass their limit are held at it and the
 * rest is shared again among the others. Places min(total, sum of limits).
 * Weights are positive.
 */
export function fillInProportion(weights: readonly number[], total: number, limits: readonly number[]): number[] {
  const shares = weights.map(() => 0);
  let free = weights.map((_, i) => i).filter((i) => limits[i] > 0);
  let remaining = total;
  while (free.length > 0 && remaining > 0) {
    const weightSum = sum(free.map((i) => weights[i]));
    const wanted = (i: number) => remaining * (weights[i] / weightSum);
    const full = free.filter((i) => wanted(i) >= limits[i]);
    if (full.length === 0) {
      for (const i of free) shares[i] = wanted(i);
      break;
    }
    for (const i of full) {
      shares[i] = limits[i];
      remaining -= limits[i];
    }
    free = free.filter((i) => !full.includes(i));
  }
  return shares;
}

/**
 * Whole numbers from shares that add up to `total`: each rounded down, the
 * samples left over go to the largest remainders, none above its (whole)
 * limit. Needs each share at most its limit.
 */
function roundPreservingTotal(exact: readonly number[], total: number, limits: readonly number[]): number[] {
  const shares = exact.map((value) => Math.floor(value));
  let left = total - sum(shares);
  const byRemainder = exact.map((value, i) => ({ i, remainder: value - Math.floor(value) })).sort((a, b) => b.remainder - a.remainder || a.i - b.i);
  // The largest remainders first; then, if rounding error hid a remainder, anyone below its limit.
  for (const strict of [true, false]) {
    for (const { i } of byRemainder) {
      if (left > 0 && shares[i] < limits[i] && (!strict || exact[i] - shares[i] > 1e-9)) {
        shares[i] += 1;
        left -= 1;
      }
    }
  }
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

/**
 * The compute time the coordinator credits a worker with: its own finish time
 * (assignment sent to update received) less the transfer the worker reports,
 * which is believed only up to `maxTransferShare` of that finish time. A
 * worker's own compute time plays no part: it could say anything.
 */
export function creditedComputeMs(finishMs: number, reportedTransferMs: number, maxTransferShare: number): number {
  const finish = Math.max(finishMs, 1);
  const transfer = Number.isFinite(reportedTransferMs) && reportedTransferMs > 0 ? Math.min(reportedTransferMs, maxTransferShare * finish) : 0;
  return finish - transfer;
}
