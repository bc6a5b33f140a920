import type { NamedArrays } from '../codec/types.ts';

/** One worker's contribution: its tensors and its weight (the samples it covers). */
export interface WeightedUpdate {
  weight: number;
  tensors: NamedArrays;
}

/** The knobs every rule reads (each ignores those it has no use for); training.aggregation in the job config. */
export interface AggregationOptions {
  /** Largest share of the round's total weight one update may carry, (0, 1]; 1 = no cap. */
  maxShare: number;
  /**
   * Each update's norm (or its deviation from the robust centre, for centered-clip) is clipped to this;
   * 0 = derive it from the round (e.g. a multiple of the median norm).
   */
  clipNorm: number;
  /** trimmed-mean: fraction trimmed at each end per coordinate (weight-based). */
  trimFraction: number;
  /** centered-clip: iterations. */
  iterations: number;
}

/** A rule's answer: the combined tensors and what it thought of each update. */
export interface Aggregate {
  tensors: NamedArrays;
  /** One per update, in the order given: true when the rule clipped, trimmed or down-weighted it as an outlier (for trust scoring). */
  outliers: boolean[];
  /** One per update: its distance to the result divided by the clip radius (>1 = beyond it). */
  deviations: number[];
}

/**
 * How a round's updates become one: pure, weighted, with the influence of any
 * one update bounded (a huge update is clipped, never refused here).
 */
export interface AggregationRule {
  /** The id used in config (training.aggregator). */
  readonly id: string;
  readonly description: string;
  /**
   * True when the round's result can be built from partial sums of disjoint
   * sets of updates (StreamingMean): aggregator processes fold such a rule.
   * A rule that needs every update at once (a coordinate-wise median, a
   * trimmed mean, centered-clip's iterations around a common centre) leaves
   * it out, and aggregators pass its updates on unfolded.
   */
  readonly folds?: boolean;
  aggregate(updates: readonly WeightedUpdate[], options: AggregationOptions): Aggregate;
}
