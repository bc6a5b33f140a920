import { derivedTau } from '../../shared/aggregate/clip.ts';
import { globalNorm, normOfSquares } from '../../shared/aggregate/norms.ts';
import { getRule } from '../../shared/aggregate/registry.ts';
import { cappedShares } from '../../shared/aggregate/shares.ts';
import { StreamingMean } from '../../shared/aggregate/streaming-mean.ts';
import type { TrainingConfig } from '../../shared/api/job-config.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { sumOf, type PartialMessage } from '../../shared/protocol/aggregation.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { RoundOutlier } from '../../shared/api/round-log.ts';
import type { ThreadFold } from './fold-thread.ts';
import type { AcceptedUpdate, OpenRound } from './round.ts';

/**
 * A round folded as its updates arrive (when foldRefusal allows: the rule is
 * a sum and its clip radius is known before the round): one StreamingMean
 * per network, opened on every assignment of the round, into which the
 * updates the coordinator receives are added as they come (foldUpdate) and,
 * when aggregators run (coordinator/aggregation/), their partials are
 * merged. Verification pairs are added when the round closes, after their
 * tensors were compared. The result is the one StreamingMean over all of them.
 */
export interface RoundFold {
  /** The aggregator owning each folded worker's updates. */
  owners: Map<string, string>;
  /** Tensor names of each network. */
  namesOf: Map<string, string[]>;
  means: Record<string, StreamingMean>;
  /** Aggregators whose partial was added. */
  partials: Set<string>;
  /** Workers whose update came inside a partial (no tensors kept). */
  folded: Set<string>;
  /** Updates the aggregators' folds clipped. */
  outliers: RoundOutlier[];
  /**
   * Set when the fold thread (fold-thread.ts) checks and folds some of the
   * round's updates: whose, and whether what it folded was merged here
   * (mergeThreadFold), which the round's close needs first.
   */
  thread?: { workers: Set<string>; merged: boolean };
}

/**
 * Why a round cannot be folded as its updates arrive (by the coordinator, or
 * by aggregators), or undefined when it can. A rule
 * folds when its result is a sum over updates (shared/aggregate: `folds`,
 * today the clipped weighted mean); its clip radius must be known before
 * the round (clipNorm set, or τ of the round before). Late updates carry a
 * staleness weight outside the round's shares, so 'stale' does not fold.
 */
export function foldRefusal(training: TrainingConfig, tau: Readonly<Record<string, number>>): string | undefined {
  for (const [network, id] of Object.entries(training.aggregator)) {
    if (!getRule(id).folds) return `training.aggregator.${network} is ${id}, which needs every update at once`;
    if (training.aggregation.clipNorm === 0 && !((tau[network] ?? 0) > 0))
      return `no clip radius for ${network} yet (the job's first round, or the first after a restart)`;
  }
  if (training.lateUpdates === 'stale') return "training.lateUpdates is 'stale'";
  return undefined;
}

/** Opens a round's fold on its assignments (worker id -> samples); `tau` per network when options.clipNorm is 0. */
export function openFold(
  shapes: Record<string, number[]>,
  networkOf: (name: string) => string,
  assigned: ReadonlyMap<string, number>,
  options: { maxShare: number; clipNorm: number; tau: Record<string, number> },
  owners: Map<string, string>,
  /** Where the means keep their sums (StreamingMean's `allocate`). */
  allocate?: (length: number) => Float64Array,
): RoundFold {
  const namesOf = new Map<string, string[]>();
  for (const name of Object.keys(shapes)) namesOf.set(networkOf(name), [...(namesOf.get(networkOf(name)) ?? []), name]);
  const means: Record<string, StreamingMean> = {};
  for (const [network, names] of namesOf) {
    const lengths = Object.fromEntries(names.map((name) => [name, shapes[name].reduce((a, b) => a * b, 1)]));
    // hold: an update beyond the last round's radius waits for its own round's τ (streaming-mean.ts).
    means[network] = new StreamingMean(
      lengths,
      assigned,
      {
        maxShare: options.maxShare,
        clipNorm: options.clipNorm,
        tau: options.tau[network] ?? 0,
        hold: true,
      },
      allocate,
    );
  }
  return { owners, namesOf, means, partials: new Set(), folded: new Set(), outliers: [] };
}

/** What a partial added: the updates it accounts for, and those the aggregator refused. */
export interface AppliedPartial {
  accepted: AcceptedUpdate[];
  refused: { workerId: string; error: TesseraError }[];
}

/**
 * Adds an aggregator's partial to the open round, or refuses it whole (a
 * TesseraError naming the field) without changing anything: it must be of
 * this round, its first, and account only for workers that aggregator owns
 * and that have not answered otherwise; its sums must have the job's shapes
 * and be finite. Its updates become accepted updates without tensors.
 */
export function addPartial(round: OpenRound | undefined, partial: PartialMessage, now: number): AppliedPartial {
  const fold = round?.fold;
  if (!round || !fold || partial.round !== round.round)
    throw new TesseraError(ErrorCode.WrongRound, `round ${partial.round} is not open for partials${round ? ` (open: ${round.round})` : ''}`, {
      field: 'round',
    });
  const from = partial.aggregatorId;
  if (fold.partials.has(from))
    throw new TesseraError(ErrorCode.DuplicateUpdate, `aggregator ${from} sent round ${round.round} already`, { field: 'aggregatorId' });
  const seen = new Set<string>();
  for (const [k, { workerId }] of [...partial.accepted, ...partial.refused].entries()) {
    if (fold.owners.get(workerId) !== from || seen.has(workerId) || round.updates.has(workerId) || round.failures.has(workerId))
      throw new TesseraError(ErrorCode.NotAssigned, `worker ${workerId} is not one aggregator ${from} may answer for now`, { field: `workers[${k}]` });
    seen.add(workerId);
  }
  for (const [k, update] of partial.accepted.entries()) {
    const assigned = round.assignments.get(update.workerId)!.message.sampleIndices.length;
    if (update.samples !== assigned)
      throw new TesseraError(ErrorCode.InvalidMessage, `expected ${assigned} samples, got ${update.samples}`, { field: `accepted[${k}].samples` });
  }
  const states = [...fold.namesOf].map(([network, names]) => {
    const entry = partial.networks[network];
    if (!entry) throw new TesseraError(ErrorCode.TensorMismatch, `no state for network ${network}`, { field: `networks.${network}` });
    const sums = Object.fromEntries(names.map((name) => [name, sumOf(partial.sums[name] ?? new Uint8Array(), lengthOf(fold, network, name), `sums.${name}`)]));
    return { network, state: { ...entry, sums } };
  });
  for (const { network, state } of states) fold.means[network].merge(state);
  fold.partials.add(from);
  const accepted = partial.accepted.map((update): AcceptedUpdate => {
    const assignment = round.assignments.get(update.workerId)!;
    fold.folded.add(update.workerId);
    if (update.clippedNetworks.length > 0)
      fold.outliers.push({ workerId: update.workerId, round: round.round, networks: update.clippedNetworks, deviation: update.deviation });
    const accepted: AcceptedUpdate = {
      workerId: update.workerId,
      round: round.round,
      samples: update.samples,
      weight: update.samples,
      finishMs: update.finishMs,
      shardIds: assignment.message.shardIds,
      grads: {},
      losses: update.losses,
      computeMs: update.computeMs,
      fetchMs: update.fetchMs,
      bytes: update.bytes,
      receivedAt: now,
    };
    if (update.workerTensors !== undefined) accepted.workerTensors = update.workerTensors;
    round.updates.set(update.workerId, accepted);
    return accepted;
  });
  const refused = partial.refused.map(({ workerId, code, message, field }) => {
    round.failures.set(workerId, { workerId, code, message });
    return { workerId, error: new TesseraError(code, message, field === undefined ? {} : { field }) };
  });
  return { accepted, refused };
}

function lengthOf(fold: RoundFold, network: string, name: string): number {
  return fold.means[network].state().sums[name].length;
}

/**
 * Folds an update the coordinator received itself into the round's means as
 * it arrives, and drops its tensors (the fold holds what the round needs of
 * them, and the means hold an update beyond the last round's radius until
 * the close): memory stays O(parameters) for an honest round however many
 * workers report. `borrowed`: the caller reuses the tensors' memory (the
 * means copy what they hold).
 */
export function foldUpdate(fold: RoundFold, update: Pick<AcceptedUpdate, 'workerId' | 'round' | 'grads' | 'squares'>, borrowed = false): void {
  const verdicts = [...fold.namesOf].map(([network, names]) => ({
    network,
    ...fold.means[network].add(update.workerId, networkTensors(update, names), networkNorm(update, names), borrowed),
  }));
  fold.folded.add(update.workerId);
  update.grads = {};
  noteOutlier(fold.outliers, update.workerId, update.round, verdicts);
}

/** Records a worker's update as an outlier of the round when some network clipped it (merging with what is there). */
function noteOutlier(outliers: RoundOutlier[], workerId: string, round: number, verdicts: { network: string; clipped: boolean; deviation: number }[]) {
  const clipped = verdicts.filter((verdict) => verdict.clipped);
  if (clipped.length === 0) return;
  const deviation = Math.max(...clipped.map((verdict) => verdict.deviation));
  const known = outliers.find((outlier) => outlier.workerId === workerId);
  if (!known) outliers.push({ workerId, round, networks: clipped.map((verdict) => verdict.network), deviation });
  else {
    known.networks.push(...clipped.map((verdict) => verdict.network));
    known.deviation = Math.max(known.deviation, deviation);
  }
}

/** Adds what the fold thread folded of the round: each network's sums, norms and held updates, and the outliers it flagged. */
export function mergeThreadFold(fold: RoundFold, folded: ThreadFold): void {
  for (const [network, mean] of Object.entries(fold.means)) {
    const state = folded.states[network];
    if (!state) throw new Error(`the fold thread sent no state for network ${network}`);
    mean.merge(state);
    mean.adoptHeld(folded.held[network] ?? []);
  }
  // Its workers' updates were folded nowhere else: their outliers are theirs alone.
  fold.outliers.push(...folded.outliers);
  if (fold.thread) fold.thread.merged = true;
}

/**
 * The round's aggregate: the contributions not folded yet (verification
 * pairs, whose tensors are compared at close) are folded in, the held
 * updates settled, then each network's mean. Returns the tensors and the
 * updates clipped.
 */
export function closeFold(fold: RoundFold, contributions: readonly AcceptedUpdate[]): { tensors: NamedArrays; outliers: RoundOutlier[] } {
  const rounds = new Map(contributions.map((update) => [update.workerId, update.round]));
  for (const update of contributions) if (!fold.folded.has(update.workerId)) foldUpdate(fold, update);
  const outliers = fold.outliers.map((outlier) => ({ ...outlier, networks: [...outlier.networks] }));
  const tensors: NamedArrays = {};
  for (const [network, mean] of Object.entries(fold.means)) {
    for (const { key, clipped, deviation } of mean.settle()) noteOutlier(outliers, key, rounds.get(key) ?? 0, [{ network, clipped, deviation }]);
    Object.assign(tensors, mean.result());
  }
  return { tensors, outliers };
}

/**
 * Each network's τ for the next round from a round the coordinator
 * aggregated itself (every update's tensors at hand), as StreamingMean's
 * nextTau would give it: CLIP_MULTIPLE x the lower weighted median of
 * norm x sqrt(share).
 */
export function tauOfUpdates(updates: readonly AcceptedUpdate[], networkOf: (name: string) => string, maxShare: number): Record<string, number> {
  const withTensors = updates.filter((update) => Object.keys(update.grads).length > 0);
  if (withTensors.length === 0) return {};
  const shares = cappedShares(
    withTensors.map((update) => update.weight),
    maxShare,
  );
  const namesOf = new Map<string, string[]>();
  for (const name of Object.keys(withTensors[0].grads)) namesOf.set(networkOf(name), [...(namesOf.get(networkOf(name)) ?? []), name]);
  return Object.fromEntries(
    [...namesOf].map(([network, names]) => [
      network,
      derivedTau(
        withTensors.map((update) => networkNorm(update, names)),
        shares,
      ),
    ]),
  );
}

/** One network's tensors of an update. */
export function networkTensors(update: Pick<AcceptedUpdate, 'grads'>, names: readonly string[]): NamedArrays {
  return Object.fromEntries(names.map((name) => [name, update.grads[name]]));
}

/** One network's L2 norm of an update: from the sums of squares its checks computed, else from its tensors. */
export function networkNorm(update: Pick<AcceptedUpdate, 'grads' | 'squares'>, names: readonly string[]): number {
  return update.squares ? normOfSquares(update.squares, names) : globalNorm(networkTensors(update, names));
}
