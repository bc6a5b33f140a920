import { getRule } from '../../shared/aggregate/index.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import type { ModelSpec } from '../../shared/models/types.ts';
import type { TrainingConfig } from '../../shared/api/job-config.ts';
import type { RoundOutlier } from '../../shared/api/round-log.ts';

/** What the round's updates came to: every tensor combined, and the updates flagged as outliers. */
export interface AggregatedRound {
  tensors: NamedArrays;
  outliers: RoundOutlier[];
}

/** The part of an accepted update aggregation reads. */
export interface Contribution {
  workerId: string;
  round: number;
  weight: number;
  grads: NamedArrays;
}

/**
 * Combines a round's contributions network by network: each network's tensors
 * of every update go through the rule training.aggregator names for it, with
 * training.aggregation's options. A network's norms and clip radii are its
 * own, so a hostile generator gradient does not change how the discriminator
 * gradients are judged.
 */
export function aggregateRound(contributions: readonly Contribution[], spec: ModelSpec<any>, training: TrainingConfig): AggregatedRound {
  const byNetwork = new Map<string, string[]>();
  for (const name of Object.keys(contributions[0].grads)) {
    const network = spec.networkOf(name);
    byNetwork.set(network, [...(byNetwork.get(network) ?? []), name]);
  }
  const tensors: NamedArrays = {};
  const flagged = contributions.map(() => ({ networks: [] as string[], deviation: 0 }));
  for (const [network, names] of byNetwork) {
    const rule = getRule(training.aggregator[network], `training.aggregator.${network}`);
    const updates = contributions.map((update) => ({ weight: update.weight, tensors: Object.fromEntries(names.map((name) => [name, update.grads[name]])) }));
    const result = rule.aggregate(updates, training.aggregation);
    Object.assign(tensors, result.tensors);
    result.outliers.forEach((outlier, k) => {
      if (!outlier) return;
      flagged[k].networks.push(network);
      flagged[k].deviation = Math.max(flagged[k].deviation, result.deviations[k]);
    });
  }
  const outliers = contributions.flatMap((update, k) =>
    flagged[k].networks.length > 0 ? [{ workerId: update.workerId, round: update.round, ...flagged[k] }] : [],
  );
  return { tensors, outliers };
}
