import type { NamedArrays } from '../../shared/codec/types.ts';
import { dealShards, type ShardSampler } from '../../shared/data/shards.ts';
import type { Assign } from '../../shared/protocol/messages.ts';
import { deriveSeed } from '../../shared/training/random.ts';
import type { JobConfig } from '../../shared/api/job-config.ts';
import type { RoundExclusion, RoundFailure, RoundOutlier } from '../../shared/api/round-log.ts';
import type { RoundFold } from './round-fold.ts';

/** A worker's share of a round. */
export interface Assignment {
  workerId: string;
  message: Assign;
  assignedAt: number;
}

export interface AcceptedUpdate {
  workerId: string;
  /** The round the update was computed for (earlier than the round applying it when late). */
  round: number;
  samples: number;
  /** Its weight in the average: the samples, discounted when late. */
  weight: number;
  /** Assignment to arrival, ms: the finish times the adaptive deadline learns from. */
  finishMs: number;
  /** The data shards the batch was drawn from. */
  shardIds: number[];
  /** Live tensors the worker reported (leak watch). */
  workerTensors?: number;
  grads: NamedArrays;
  /** Each tensor's sum of squares, as the checks computed them (the norms the fold and τ need without another pass). */
  squares?: Record<string, number>;
  losses: Record<string, number>;
  computeMs: number;
  fetchMs: number;
  bytes: number;
  receivedAt: number;
}

export interface OpenRound {
  round: number;
  version: number;
  startedAt: number;
  deadlineAt: number;
  assignments: Map<string, Assignment>;
  updates: Map<string, AcceptedUpdate>;
  failures: Map<string, RoundFailure>;
  /** Updates of earlier rounds applied here with a staleness weight (training.lateUpdates = 'stale'). */
  late: AcceptedUpdate[];
  /** Verification copies: worker id -> the worker whose assignment it was given again (same indices and seed). */
  copies: Map<string, string>;
  /** Set when aggregators fold this round's updates (coordinator/aggregation/): the partials and the mean they add up to. */
  fold?: RoundFold;
  /** Updates the fold thread is checking (worker id -> settled once accepted or refused); neither accepted nor failed yet. */
  pending?: Map<string, Promise<unknown>>;
  /** Set while the round waits for the fold thread before closing: no more on-time updates are taken. */
  closing?: boolean;
}

export interface RoundSummary {
  round: number;
  version: number;
  durationMs: number;
  deadlineMs: number;
  updates: AcceptedUpdate[];
  /** Late updates of earlier rounds applied in this one. */
  late: AcceptedUpdate[];
  failures: RoundFailure[];
  /** Accepted updates left out of the aggregate, and why (a verification copy, a disputed pair, a quarantined worker). */
  excluded: RoundExclusion[];
  samples: number;
  losses: Record<string, number>;
  /** Samples of the round over its wall time. */
  samplesPerSecond: number;
  applied: boolean;
  /** Updates (on-time or late) that some network's aggregation rule clipped, trimmed or found beyond its radius. */
  outliers: RoundOutlier[];
}

/** True for a verification copy or its original: their tensors are compared when the round closes, so they stay whole until then. */
export function inVerificationPair(round: OpenRound, workerId: string): boolean {
  if (round.copies.has(workerId)) return true;
  for (const original of round.copies.values()) if (original === workerId) return true;
  return false;
}

/** What the next round trains: its number, the weights it starts from, and when it must close. */
export interface RoundPlan {
  round: number;
  version: number;
  weightsHash: string;
  deadlineMs: number;
  now: number;
}

/**
 * One assignment per worker: each gets its shards and a batch of its own size
 * drawn from them. A worker in `copies` (copy -> original) gets the
 * original's assignment again, same indices and seed, so the two gradients
 * can be compared.
 */
export function assignRound(
  config: JobConfig,
  shardSampler: ShardSampler,
  plan: RoundPlan,
  workers: readonly { id: string; batchSize: number }[],
  copies: ReadonlyMap<string, string>,
): Map<string, Assignment> {
  const { training } = config;
  const shards = dealShards(
    shardSampler.shardCount,
    workers.map((worker) => worker.id),
  );
  const assignments = new Map<string, Assignment>();
  for (const worker of workers) {
    if (copies.has(worker.id)) continue;
    const shardIds = shards.get(worker.id)!;
    // More workers than shards: the extra ones share every shard rather than idle.
    const source = shardIds.length > 0 ? shardIds : Array.from({ length: shardSampler.shardCount }, (_, i) => i);
    const message: Assign = {
      type: 'assign',
      jobId: config.id,
      round: plan.round,
      version: plan.version,
      weightsHash: plan.weightsHash,
      sampleIndices: shardSampler.draw(source, worker.batchSize),
      shardIds: source,
      // The round's seed, the same for every worker: each example's noise comes from it and the example's index
      // (shared/training/noise.ts), so how the examples are split among workers changes nothing.
      seed: deriveSeed(training.seed, plan.round),
      codec: training.codec,
      deadlineMs: plan.deadlineMs,
    };
    if (training.mode === 'local') {
      message.localSteps = training.localSteps;
      message.innerOptimizers = config.optimizers;
    } else if (training.errorFeedback) message.errorFeedback = true;
    assignments.set(worker.id, { workerId: worker.id, message, assignedAt: plan.now });
  }
  for (const [copy, original] of copies) {
    const source = assignments.get(original);
    if (!source || !workers.some((worker) => worker.id === copy))
      throw new Error(`copy ${copy} of ${original}: both must be in the round, the original with its own assignment`);
    assignments.set(copy, { workerId: copy, message: { ...source.message }, assignedAt: plan.now });
  }
  return assignments;
}
