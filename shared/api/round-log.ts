import type { QualityReport } from '../eval/report.ts';
import type { ErrorCode } from '../protocol/errors.ts';

/*
 * The round log's lines (rounds.jsonl in a job's output folder), as the
 * coordinator writes them (coordinator/round-log.ts), GET /api/jobs/:id/rounds
 * and /quality answer them, and the dashboard's events carry them. Two kinds:
 * a closed round (a RoundRow: no `kind` key, as every line was before quality
 * lines existed), and `kind: "quality"`, the sample quality of the sampling
 * weights after a round, written when its background scoring finished (so it
 * may come a few rounds after the round it names). Readers that want rounds
 * skip the lines with a kind.
 */

/** One update a round aggregated, as its row shows it. */
export interface RoundUpdateRow {
  workerId: string;
  samples: number;
  /** What the worker reports it spent computing, ms. */
  computeMs: number;
  /** Assignment sent to update received, on the coordinator's clock. */
  finishMs: number;
  bytes: number;
  /** Data shards the batch was drawn from. */
  shards: number;
  /** Live tfjs tensors the worker reported (leak watch). */
  workerTensors?: number;
}

/** An update of an earlier round applied in this one, with its discounted weight. */
export interface LateUpdateRow {
  workerId: string;
  /** The round it was computed for. */
  round: number;
  samples: number;
  weight: number;
}

/** A worker that was assigned work but whose update will not count, and why. */
export interface RoundFailure {
  workerId: string;
  code: ErrorCode | 'LEFT' | 'DEADLINE';
  message: string;
}

/** Why an accepted update was left out of the aggregate: a verification copy that agreed, a pair that disagreed, a quarantined worker. */
export type ExclusionReason = 'duplicate' | 'disputed' | 'quarantined';

/** An accepted update the aggregate left out (coordinator/verification.ts decides which). */
export interface RoundExclusion {
  workerId: string;
  reason: ExclusionReason;
}

/** An update (on-time or late) that some network's aggregation rule clipped, trimmed or found beyond its radius. */
export interface RoundOutlier {
  workerId: string;
  /** The round the update was computed for (earlier than the closing round for a late update). */
  round: number;
  /** The networks whose rule flagged it. */
  networks: string[];
  /** Its largest distance to a flagged network's result, in that rule's clip radii. */
  deviation: number;
}

/** A duplicate pair as compared: the worker whose assignment it was, and the worker given a copy of it. */
export interface DuplicateComparison {
  original: string;
  copy: string;
  /** agree: within the tolerance; disputed: not, the referee recomputes; unresolved: not, and no referee could (soft mismatches). */
  outcome: 'agree' | 'disputed' | 'unresolved';
  /** Relative L2 distance of the pair's `tensor` (coordinator/verification-compare.ts); infinite, so null in JSON, when shapes differ. */
  distance: number;
  /** The tensor that decided the outcome: the farthest apart, or the first out of tolerance. */
  tensor: string;
}

/** A closed round as the round log, the API and the dashboard show it. */
export interface RoundRow {
  round: number;
  /** The weights version the round trained on; an applied round stepped it once. */
  version: number;
  applied: boolean;
  durationMs: number;
  samples: number;
  samplesPerSecond: number;
  losses: Record<string, number>;
  updates: RoundUpdateRow[];
  /** Live tfjs tensors on the coordinator when the round closed (leak watch). */
  coordinatorTensors: number;
  /** Late updates of earlier rounds applied here, with their discounted weight. */
  late: LateUpdateRow[];
  /** How long this round would wait at most. */
  deadlineMs: number;
  failures: RoundFailure[];
  /** Accepted updates the aggregate left out: verification copies, disputed pairs, quarantined workers. */
  excluded: RoundExclusion[];
  /** The round's duplicate pairs as compared (the referee's rulings come later, in the coordinator's log and metrics). */
  verification: DuplicateComparison[];
  /** Updates the aggregation rules flagged, with their distance to the result in clip radii. */
  outliers: RoundOutlier[];
  /** ISO 8601, on the coordinator's clock. */
  closedAt: string;
}

/** A quality line: the QualityReport of the weights of `version`, scored after `round` closed. */
export interface QualityRow extends QualityReport {
  kind: 'quality';
  /** The round whose closing made the scoring due. */
  round: number;
  /** The weights version scored (training steps taken). */
  version: number;
  samplesSeen: number;
  /** Wall time from the job's first round to the weights scored (a restart's downtime included). */
  wallMs: number;
  /** When the weights scored were current: the round's close, as a round row's closedAt. */
  closedAt: string;
}

/** Any line of the round log. */
export type RoundLogLine = RoundRow | QualityRow;
