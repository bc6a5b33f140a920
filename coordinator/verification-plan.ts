/**
 * Rounds in which a quarantined worker gets a copy to compute: a quarter, so
 * an honest one flagged by mistake earns its way back in ~32 rounds, and a
 * hostile one costs the referee a recomputation every 4th round, not every round.
 */
export const PROBE_SHARE = 0.25;

/** Who computes whose assignment again this round. */
export interface CopyPlan {
  /** copy -> original: the copy gets the original's assignment, same indices and seed. */
  copies: Map<string, string>;
  /** Quarantined workers not probed this round (or with no trusted worker to copy): they get no work. */
  resting: string[];
}

/**
 * Picks a round's verification copies. Each trusted worker's assignment is
 * duplicated with probability `share`, to another trusted worker drawn at
 * random (each in at most one pair: the copy gives up its own batch). A
 * quarantined worker gets, in PROBE_SHARE of the rounds, a copy of a random
 * trusted worker's assignment and otherwise nothing: its work never counts,
 * and agreeing is its only way back.
 * `random` gives uniform values in [0, 1); workers must not be able to
 * predict it, or a hostile one would behave exactly when checked.
 */
export function planCopies(workers: readonly { id: string; quarantined: boolean }[], share: number, random: () => number): CopyPlan {
  const trusted = workers.filter((worker) => !worker.quarantined).map((worker) => worker.id);
  const quarantined = workers.filter((worker) => worker.quarantined).map((worker) => worker.id);
  const copies = new Map<string, string>();
  if (trusted.length === 0) return { copies, resting: quarantined };
  const pick = <T>(values: readonly T[]) => values[Math.min(values.length - 1, Math.floor(random() * values.length))];
  // In random order, so no worker is always an original (and never checked as a copy).
  const free = [...trusted];
  while (free.length > 0) {
    const original = free.splice(free.indexOf(pick(free)), 1)[0];
    if (free.length === 0 || random() >= share) continue;
    copies.set(free.splice(free.indexOf(pick(free)), 1)[0], original);
  }
  const originals = trusted.filter((id) => !copies.has(id));
  const resting: string[] = [];
  for (const id of quarantined) {
    if (random() < PROBE_SHARE) copies.set(id, pick(originals));
    else resting.push(id);
  }
  return { copies, resting };
}
