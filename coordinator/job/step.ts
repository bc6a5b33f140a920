import type { ModelSpec } from '../../shared/models/types.ts';
import { adamStep } from '../../shared/training/adam.ts';
import { emaDecayAt, updateEma } from '../../shared/training/ema.ts';
import { scaledOptimizer } from '../../shared/training/lr-scaling.ts';
import { createMomentum, nesterovStep } from '../../shared/training/nesterov.ts';
import type { JobConfig } from '../../shared/api/job-config.ts';
import type { RoundOutlier } from '../../shared/api/round-log.ts';
import { aggregateRound } from './aggregate-round.ts';
import type { AcceptedUpdate } from './round.ts';
import { closeFold, type RoundFold } from './round-fold.ts';
import type { JobState } from './state.ts';

/**
 * One training step from a round's contributions: each network's gradients
 * are combined by its aggregation rule (weighted by samples) and each
 * network's optimizer steps, then the moving average follows. Returns the
 * updates the aggregation rules flagged. A round aggregators folded (`fold`)
 * takes its mean from the fold instead (partials and the updates received
 * here, see round-fold.ts).
 */
export function stepWeights(
  state: JobState,
  contributions: readonly AcceptedUpdate[],
  spec: ModelSpec<any>,
  config: JobConfig,
  fold?: RoundFold,
): RoundOutlier[] {
  const samples = contributions.reduce((sum, update) => sum + update.samples, 0);
  const { tensors: grads, outliers } = fold ? closeFold(fold, contributions) : aggregateRound(contributions, spec, config.training);
  const { training } = config;
  if (training.mode === 'local') {
    // The updates are weight deltas: one outer Nesterov step on all tensors (each network's tensors move by their own delta).
    state.outerMomentum ??= createMomentum(state.weights);
    nesterovStep(state.weights, grads, state.outerMomentum, { learningRate: training.outerLearningRate, momentum: training.outerMomentum });
  } else {
    for (const [network, optimizer] of Object.entries(state.optimizers)) {
      adamStep(state.weights, grads, optimizer, scaledOptimizer(config.optimizers[network], samples, training, state.version));
    }
  }
  state.version += 1;
  state.samplesSeen += samples;
  if (spec.emaDecay > 0) state.ema = updateEma(state.ema, state.weights, emaDecayAt(state.version, spec.emaDecay));
  return outliers;
}
