import type { OptimizerConfig } from '../models/types.ts';

/**
 * How the learning rate follows the global batch (the samples a round
 * averages), which grows with the fleet: an autoscaler that doubles the
 * workers doubles it.
 *
 * - `none`: the configured rate at every batch. Runs repeat exactly, and a
 *   round's step is the step one process would take on the union batch.
 * - `sqrt`: rate x sqrt(batch / referenceBatch). The rule for Adam (Malladi
 *   et al. 2022, "On the SDEs and scaling rules for adaptive gradient
 *   algorithms"): Adam divides by the gradient's RMS, so a larger batch
 *   lowers the update's noise as 1/sqrt(batch), not its size.
 * - `linear`: rate x batch / referenceBatch (Goyal et al. 2017), the rule for
 *   plain SGD; with Adam it overshoots once the batch is several times the
 *   reference.
 */
export const LR_SCALING_RULES = ['none', 'sqrt', 'linear'] as const;
export type LrScalingRule = (typeof LR_SCALING_RULES)[number];

export interface LrScalingConfig {
  lrScaling: LrScalingRule;
  /** The global batch at which the configured learning rates hold. */
  referenceBatch: number;
  /** Training steps over which the rates halve (an exponential decay); 0 or absent keeps them constant. */
  lrHalfLife?: number;
}

/** The factor on the configured learning rate for a round that averages `globalBatch` samples. */
export function learningRateScale(globalBatch: number, config: LrScalingConfig): number {
  if (!(globalBatch > 0) || !(config.referenceBatch > 0))
    throw new RangeError(`batches must be positive, got global ${globalBatch}, reference ${config.referenceBatch}`);
  const ratio = globalBatch / config.referenceBatch;
  switch (config.lrScaling) {
    case 'none':
      return 1;
    case 'sqrt':
      return Math.sqrt(ratio);
    case 'linear':
      return ratio;
  }
}

/** The factor on the learning rate at training step `step` (0 for the first): 2^(-step / lrHalfLife), or 1 without a half-life. */
export function learningRateDecay(step: number, config: LrScalingConfig): number {
  return config.lrHalfLife ? 0.5 ** (step / config.lrHalfLife) : 1;
}

/**
 * The optimizer config with its learning rate scaled for this round's global
 * batch and decayed for its step (the same object when neither changes it).
 */
export function scaledOptimizer(optimizer: OptimizerConfig, globalBatch: number, config: LrScalingConfig, step = 0): OptimizerConfig {
  const scale = learningRateScale(globalBatch, config) * learningRateDecay(step, config);
  return scale === 1 ? optimizer : { ...optimizer, learningRate: optimizer.learningRate * scale };
}
