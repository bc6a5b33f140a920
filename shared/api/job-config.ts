import type { AggregationOptions } from '../aggregate/types.ts';
import type { OptimizerConfig } from '../models/types.ts';
import type { LrScalingRule } from '../training/lr-scaling.ts';

/*
 * The job config's shape: what POST /api/jobs resolves, GET /api/jobs/:id
 * shows (the dashboard reads it) and every checkpoint saves. Its defaults,
 * bounds and parser are in coordinator/config.ts, whose fields also give the
 * JobConfig schema of /api/openapi.json.
 */

/** Everything that defines a job; resolved once, validated, and saved in every checkpoint. */
export interface JobConfig {
  id: string;
  /**
   * initFrom: a folder with another job's checkpoint, or `store:<job id>` for one in the coordinator's store, whose
   * sampling weights this job starts from (fine-tuning; absent: random weights).
   */
  model: { id: string; config: Record<string, unknown>; initFrom?: string };
  dataset: DatasetConfig;
  training: TrainingConfig;
  /** Optimizer per network; the model's defaults fill what is absent. */
  optimizers: Record<string, OptimizerConfig>;
  output: OutputConfig;
}

export interface DatasetConfig {
  /** A dataset of the registry (shared/data/registry.ts). */
  id: string;
  heldOutFraction: number;
  shards: number;
  /** The folder of the `images` dataset; '' for a packaged one. */
  path: string;
  /** [height, width, channels] of the images: `images` resizes to it, a packaged dataset has its own. */
  shape: [number, number, number];
}

export interface TrainingConfig {
  batchSize: number;
  batching: 'throughput' | 'equal';
  maxWorkerShare: number;
  maxBatchGrowth: number;
  rounds: number;
  minWorkers: number;
  roundDeadlineMs: number;
  deadline: 'adaptive' | 'fixed';
  deadlineFloorMs: number;
  lateUpdates: 'drop' | 'stale';
  mode: 'sync' | 'local';
  localSteps: number;
  outerLearningRate: number;
  outerMomentum: number;
  stalenessDecay: number;
  maxStaleness: number;
  seed: number;
  codec: string;
  errorFeedback: boolean;
  maxGradNorm: number;
  /** Rounds with at least this many assignments have their updates checked and folded in a worker thread; 0: never. */
  foldThreadFrom: number;
  /** The aggregation rule for each network (the model's networks), by rule id. */
  aggregator: Record<string, string>;
  aggregation: AggregationOptions;
  lrScaling: LrScalingRule;
  referenceBatch: number;
  lrHalfLife: number;
  verification: VerificationConfig;
}

/** Duplicate assignments and the trust score that follows from them (coordinator/verification.ts, coordinator/trust.ts). */
export interface VerificationConfig {
  duplicateShare: number;
  tolerance: number;
  quarantineBelow: number;
  releaseAbove: number;
}

export interface OutputConfig {
  dir: string;
  checkpointEvery: number;
  sampleEvery: number;
  exportEvery: number;
  sampleCount: number;
  evalEvery: number;
  evalSamples: number;
}
