import type { ExclusionReason } from '../../shared/api/round-log.ts';
import type { AcceptedUpdate, OpenRound, RoundSummary } from './round.ts';

/**
 * A closed round's account: who contributed (in worker id order), who failed
 * and who was left out, with `applied` true when any update counts. The
 * aggregate's outliers are filled in by the step that follows.
 */
export function summarizeRound(round: OpenRound, now: number, excluded: ReadonlyMap<string, ExclusionReason>): RoundSummary {
  const included = (update: AcceptedUpdate) => !excluded.has(update.workerId);
  // In worker id order, not arrival order: the float sums, and so the weights, replay the same whatever the timing.
  const updates = [...round.updates.values()].filter(included).sort(byWorkerId);
  const late = round.late.filter(included).sort(byWorkerId);
  const samples = [...updates, ...late].reduce((sum, update) => sum + update.samples, 0);
  return {
    round: round.round,
    version: round.version,
    durationMs: now - round.startedAt,
    deadlineMs: round.deadlineAt - round.startedAt,
    updates,
    late,
    failures: [...round.failures.values()],
    excluded: [...round.updates.values(), ...round.late]
      .filter((update) => !included(update))
      .map((update) => ({ workerId: update.workerId, reason: excluded.get(update.workerId)! })),
    samples,
    losses: meanLosses(updates),
    samplesPerSecond: samples / Math.max(1e-3, (now - round.startedAt) / 1000),
    applied: updates.length + late.length > 0,
    outliers: [],
  };
}

const byWorkerId = (a: AcceptedUpdate, b: AcceptedUpdate) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0);

/** Losses averaged over the updates, weighted by their samples. */
function meanLosses(updates: readonly AcceptedUpdate[]): Record<string, number> {
  const sums: Record<string, number> = {};
  const weights: Record<string, number> = {};
  for (const update of updates) {
    for (const [name, value] of Object.entries(update.losses)) {
      sums[name] = (sums[name] ?? 0) + value * update.samples;
      weights[name] = (weights[name] ?? 0) + update.samples;
    }
  }
  return Object.fromEntries(Object.keys(sums).map((name) => [name, sums[name] / weights[name]]));
}
