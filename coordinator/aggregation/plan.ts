import type { PlanAssignment, RoundPlan } from '../../shared/protocol/aggregation.ts';
import type { Job } from '../job/job.ts';
import { foldRefusal, openFold, type RoundFold } from '../job/round-fold.ts';
import type { OpenRound } from '../job/round.ts';

/** FNV-1a, 32 bits: rendezvous hashing needs a fast, stable spread, not a secret. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/**
 * The aggregator owning a worker connection: the highest hash of
 * (aggregator, connection). Rendezvous hashing moves only the dead one's
 * connections when an aggregator goes, and spreads them evenly.
 */
export function ownerOf(connectionId: string, aggregators: readonly string[]): string {
  let best = aggregators[0];
  let bestHash = -1;
  for (const aggregator of aggregators) {
    const hash = fnv1a(`${aggregator}/${connectionId}`);
    if (hash > bestHash || (hash === bestHash && aggregator < best)) [best, bestHash] = [aggregator, hash];
  }
  return best;
}

/**
 * The plan of an opened round for the aggregators, and the coordinator's
 * fold of it when the round folds. Owned are the NATS workers that are
 * neither a verification copy nor its original (the verifier compares their
 * tensors, so those reach the coordinator whole).
 */
export function planRound(
  job: Job,
  round: OpenRound,
  aggregators: readonly string[],
  connectionOf: (workerId: string) => string | undefined,
  tau: Readonly<Record<string, number>>,
): { plan: RoundPlan; fold?: RoundFold } {
  const { training } = job.config;
  const why = foldRefusal(training, tau);
  const compared = new Set([...round.copies.keys(), ...round.copies.values()]);
  const owners = new Map<string, string>();
  const assignments = [...round.assignments.values()].map((assignment): PlanAssignment => {
    const entry: PlanAssignment = { workerId: assignment.workerId, samples: assignment.message.sampleIndices.length };
    const connectionId = connectionOf(assignment.workerId);
    if (why === undefined && connectionId !== undefined && !compared.has(assignment.workerId)) {
      entry.connectionId = connectionId;
      entry.owner = ownerOf(connectionId, aggregators);
      entry.assign = assignment.message;
      owners.set(assignment.workerId, entry.owner);
    }
    return entry;
  });
  const networkOf = Object.fromEntries(Object.keys(job.shapes).map((name) => [name, job.spec.networkOf(name)]));
  const plan: RoundPlan = {
    type: 'roundPlan',
    jobId: job.config.id,
    round: round.round,
    fold: why === undefined,
    why,
    aggregators: [...aggregators],
    deadlineMs: round.deadlineAt - round.startedAt,
    job: {
      shapes: job.shapes,
      networkOf,
      lossNames: [...job.spec.lossNames],
      maxGradNorm: training.maxGradNorm,
      maxShare: training.aggregation.maxShare,
      clipNorm: training.aggregation.clipNorm,
      tau: { ...tau },
    },
    assignments,
  };
  if (why !== undefined) return { plan };
  const assigned = new Map(assignments.map((entry) => [entry.workerId, entry.samples]));
  const options = { maxShare: training.aggregation.maxShare, clipNorm: training.aggregation.clipNorm, tau: { ...tau } };
  return { plan, fold: openFold(job.shapes, (name) => networkOf[name], assigned, options, owners) };
}
