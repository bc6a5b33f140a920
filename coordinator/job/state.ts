import type { NamedArrays } from '../../shared/codec/types.ts';
import type { ShardCursor } from '../../shared/data/shards.ts';
import type { ModelSpec } from '../../shared/models/types.ts';
import { createAdamState, type AdamState } from '../../shared/training/adam.ts';

/** Everything a checkpoint holds: with the config, enough to continue the job exactly. */
export interface JobState {
  /** The next round's number. Every round gets a new one, applied or not, so an update names exactly one round. */
  round: number;
  /** Version of `weights`: the number of rounds applied (training steps taken). */
  version: number;
  weights: NamedArrays;
  optimizers: Record<string, AdamState>;
  shardCursors: ShardCursor[];
  samplesSeen: number;
  /** The outer optimizer's momentum in local-update mode (absent until the first local round). */
  outerMomentum?: NamedArrays;
  /** Exponential moving average of the weights, for sampling and export (models with emaDecay > 0). */
  ema?: NamedArrays;
  /** Worker ids an admin banned: refused at hello, and still after a restart. */
  banned?: string[];
  /** A folder dataset's content hash (over its training shards' hashes) when the job began: a resume on other images is refused. */
  dataHash?: string;
}

/** A fresh state: initial weights and zeroed optimizers, one per network. */
export function initialState(spec: ModelSpec<any>, weights: NamedArrays, shardCount: number): JobState {
  const optimizers: Record<string, AdamState> = {};
  for (const network of Object.keys(spec.networks)) {
    optimizers[network] = createAdamState(
      weights,
      Object.keys(weights).filter((name) => spec.networkOf(name) === network),
    );
  }
  return {
    round: 0,
    version: 0,
    weights,
    optimizers,
    shardCursors: Array.from({ length: shardCount }, () => ({ epoch: 0, position: 0 })),
    samplesSeen: 0,
  };
}

/** The weights to sample from and export: the moving average when the model keeps one. */
export function samplingWeights(state: JobState): NamedArrays {
  return state.ema ?? state.weights;
}
