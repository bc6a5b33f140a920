import { StreamingMean } from '../../shared/aggregate/streaming-mean.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { sumOf, type PartialMessage } from '../../shared/protocol/aggregation.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { RoundOutlier } from '../../shared/api/round-log.ts';
import type { AcceptedUpdate, OpenRound } from './round.ts';

/**
 * A round whose updates aggregators fold (coordinator/aggregation/): one
 * StreamingMean per network, opened on every assignment of the round with
 * the shares and radii the aggregators use, into which their partials are
 * merged as they come and the updates that reached the coordinator itself
 * (WebSocket workers, verification pairs, anything relayed) are added when
 * the round closes. The result is the one StreamingMean over all of them.
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
}

/** Opens a round's fold on its assignments (worker id -> samples); `tau` per network when options.clipNorm is 0. */
export function openFold(
  shapes: Record<string, number[]>,
  networkOf: (name: string) => string,
  assigned: ReadonlyMap<string, number>,
  options: { maxShare: number; clipNorm: number; tau: Record<string, number> },
  owners: Map<string, string>,
): RoundFold {
  const namesOf = new Map<string, string[]>();
  for (const name of Object.keys(shapes)) namesOf.set(networkOf(name), [...(namesOf.get(networkOf(name)) ?? []), name]);
  const means: Record<string, StreamingMean> = {};
  for (const [network, names] of namesOf) {
    const lengths = Object.fromEntries(names.map((name) => [name, shapes[name].reduce((a, b) => a * b, 1)]));
    means[network] = new StreamingMean(lengths, assigned, { maxShare: options.maxShare, clipNorm: options.clipNorm, tau: options.tau[network] ?? 0 });
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
 * The round's aggregate: the updates the coordinator received itself are
 * folded in (the partials' are there already), then each network's mean.
 * Returns the tensors and the updates clipped.
 */
export function closeFold(fold: RoundFold, contributions: readonly AcceptedUpdate[]): { tensors: NamedArrays; outliers: RoundOutlier[] } {
  const outliers = [...fold.outliers];
  for (const update of contributions) {
    if (fold.folded.has(update.workerId)) continue;
    const networks: string[] = [];
    let deviation = 0;
    for (const [network, names] of fold.namesOf) {
      const verdict = fold.means[network].add(update.workerId, Object.fromEntries(names.map((name) => [name, update.grads[name]])));
      if (verdict.clipped) networks.push(network);
      deviation = Math.max(deviation, verdict.deviation);
    }
    if (networks.length > 0) outliers.push({ workerId: update.workerId, round: update.round, networks, deviation });
  }
  const tensors: NamedArrays = {};
  for (const mean of Object.values(fold.means)) Object.assign(tensors, mean.result());
  return { tensors, outliers };
}
