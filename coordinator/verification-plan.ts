/**
 * Rounds in which a quarantined worker gets a copy to compute: a quarter, so
 * an honest one flagged by mistake earns its way back in ~32 rounds, and a
 * hostile one costs the referee a recomputation every 4th round, not every round.
 */
export const PROBE_SHARE = 0.25;

/** A worker as the plan sees it. */
export interface PlanWorker {
  id: string;
  quarantined: boolean;
  /** 0 for a worker nothing speaks against, up to 1: its assignment is duplicated with at least this probability. */
  suspicion: number;
}

/** Who computes whose assignment again this round. */
export interface CopyPlan {
  /** copy -> original: the copy gets the original's assignment, same indices and seed. */
  copies: Map<string, string>;
  /** Quarantined workers not probed this round (or with no trusted worker to copy): they get no work. */
  resting: string[];
}

/**
 * Picks a round's verification copies. Each trusted worker's assignment is
 * duplicated with probability `share`, or its suspicion when higher (a worker
 * that lost trust is checked again soon, so one lie is confirmed or cleared
 * in a few rounds rather than a few dozen). Originals are drawn most
 * suspected first; the copy goes to the least suspected free worker (at
 * random among equals); each worker is in at most one pair, and a copy gives
 * up its own batch. A quarantined worker gets, in
 * PROBE_SHARE of the rounds, a copy of a random trusted worker's assignment
 * and otherwise nothing: its work never counts, and agreeing is its only way
 * back. A share of 0 turns all of it off (quarantined workers then rest until
 * an admin releases them). `random` gives uniform values in [0, 1); workers
 * must not be able to predict it, or a hostile one would behave exactly when checked.
 */
export function planCopies(workers: readonly PlanWorker[], share: number, random: () => number): CopyPlan {
  const trusted = workers.filter((worker) => !worker.quarantined);
  const quarantined = workers.filter((worker) => worker.quarantined).map((worker) => worker.id);
  const copies = new Map<string, string>();
  // No duplicates at all: nothing to check a suspect with, nothing for a quarantined worker to prove itself on.
  if (trusted.length === 0 || share <= 0) return { copies, resting: quarantined };
  const pick = <T>(values: readonly T[]) => values[Math.min(values.length - 1, Math.floor(random() * values.length))];
  const free = [...trusted];
  const take = (worker: PlanWorker) => free.splice(free.indexOf(worker), 1)[0];
  /** A random one of the free workers with the most (or least) suspicion: among equals no worker is always an original, or never a copy. */
  const mostOrLeast = (most: boolean) => {
    const level = (most ? Math.max : Math.min)(...free.map((worker) => worker.suspicion));
    return take(pick(free.filter((worker) => worker.suspicion === level)));
  };
  while (free.length > 0) {
    // The most suspected first, so a suspect is not left without a partner.
    const original = mostOrLeast(true);
    if (free.length === 0 || random() >= Math.max(share, original.suspicion)) continue;
    copies.set(mostOrLeast(false).id, original.id);
  }
  const originals = trusted.filter((worker) => !copies.has(worker.id)).map((worker) => worker.id);
  const resting: string[] = [];
  for (const id of quarantined) {
    if (random() < PROBE_SHARE) copies.set(id, pick(originals));
    else resting.push(id);
  }
  return { copies, resting };
}
