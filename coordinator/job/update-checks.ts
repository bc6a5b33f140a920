import { findNonFinite, normOfSquares, squaredNorms } from '../../shared/aggregate/norms.ts';
import { getCodec } from '../../shared/codec/index.ts';
import { decodeArrays } from '../../shared/codec/named.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import { checkLosses } from './losses.ts';
import type { AcceptedUpdate, Assignment, OpenRound } from './round.ts';

/** What an update's content is checked against: the model's losses and tensors, and the job's norm limit. */
export interface ContentRules {
  lossNames: readonly string[];
  shapes: Record<string, number[]>;
  /** training.maxGradNorm; 0 turns the check off. */
  maxGradNorm: number;
}

/**
 * The assignment an on-time update answers: refuses an update for another
 * round, from a worker with no work in it, a second one, one the round
 * stopped waiting for, or one computed on other weights.
 */
export function checkOnTime(round: OpenRound | undefined, workerId: string, update: Update): Assignment {
  if (!round || update.round !== round.round) {
    throw new TesseraError(ErrorCode.WrongRound, `round ${update.round} is not open${round ? ` (open: ${round.round})` : ''}`, { field: 'round' });
  }
  const assignment = round.assignments.get(workerId);
  if (!assignment) throw new TesseraError(ErrorCode.NotAssigned, `worker ${workerId} has no work in round ${round.round}`, { field: 'round' });
  if (round.updates.has(workerId) || round.pending?.has(workerId))
    throw new TesseraError(ErrorCode.DuplicateUpdate, `worker ${workerId} already sent round ${round.round}`, { field: 'round' });
  if (round.failures.has(workerId))
    throw new TesseraError(ErrorCode.WrongRound, `round ${round.round} stopped waiting for worker ${workerId}`, { field: 'round' });
  if (round.closing) throw new TesseraError(ErrorCode.WrongRound, `round ${round.round} is closing`, { field: 'round' });
  if (update.version !== round.version) {
    throw new TesseraError(ErrorCode.StaleVersion, `computed on version ${update.version}, round ${round.round} trains version ${round.version}`, {
      field: 'version',
    });
  }
  checkWeightsHash(update, assignment);
  return assignment;
}

/** Refuses an update that names other weights than its assignment did (a gradient replayed from another version). */
export function checkWeightsHash(update: Update, assignment: Assignment): void {
  const expected = assignment.message.weightsHash;
  if (update.weightsHash !== expected) {
    throw new TesseraError(
      ErrorCode.StaleVersion,
      `computed from weights ${update.weightsHash.slice(0, 12)}…, the assignment named ${expected.slice(0, 12)}…`,
      { field: 'weightsHash' },
    );
  }
}

/** An update's tensors decoded and checked: the arrays in the job's shapes, and each one's sum of squares. */
export interface CheckedTensors {
  grads: NamedArrays;
  squares: Record<string, number>;
}

/**
 * Decodes an update's tensors (`bytes` in `codec`) into the job's shapes and
 * refuses non-finite values and a global norm above the job's limit. Shared
 * by the event loop's checks and the fold thread (fold-thread-entry.ts),
 * which decodes every update `into` the same arrays (TensorCodec.decode).
 */
export function checkTensors(rules: Pick<ContentRules, 'shapes' | 'maxGradNorm'>, codec: string, bytes: Uint8Array, into?: NamedArrays): CheckedTensors {
  const grads = decodeArrays(getCodec(codec), bytes, rules.shapes, 'tensors', into);
  // One pass over the values: the sums of squares give the norm, and a non-finite sum says a value is NaN or infinite.
  const squares = squaredNorms(grads);
  const norm = normOfSquares(squares);
  if (!Number.isFinite(norm)) {
    const nonFinite = findNonFinite(grads);
    throw new TesseraError(ErrorCode.NonFinite, `non-finite value at index ${nonFinite?.index ?? 0}`, {
      field: `tensors${nonFinite ? `.${nonFinite.name}` : ''}`,
    });
  }
  // The corruption guard (a norm no honest gradient reaches), not the defence against large updates: the
  // aggregation rules clip those in closeRound, bounding their pull without throwing away the worker's round.
  const limit = rules.maxGradNorm;
  if (limit > 0 && norm > limit)
    throw new TesseraError(ErrorCode.NormTooLarge, `gradient norm ${norm.toPrecision(4)} above the job's limit ${limit}`, { field: 'tensors' });
  return { grads, squares };
}

/** The checks on an update that need no tensor decoded: its samples against the assignment, and its losses. */
export function checkCounts(rules: ContentRules, update: Update, assignment: Assignment): void {
  const assigned = assignment.message.sampleIndices.length;
  // Another batch than this round's assignment: most likely the answer to an assignment of the same round and weights
  // that a coordinator restarted from a checkpoint (or a standby after a failover) has since made again, split anew. Late
  // rather than false: refused as WrongRound, which costs no trust (a worker can gain nothing by a refused update).
  if (update.samples !== assigned)
    throw new TesseraError(
      ErrorCode.WrongRound,
      `expected ${assigned} samples, got ${update.samples}: the update answers another assignment of round ${update.round} (made before a restart?)`,
      { field: 'samples' },
    );
  checkLosses(update.losses, rules.lossNames);
}

/**
 * An accepted update from its checked parts; `weight` is its weight in the
 * average. `checked` absent: its tensors are being checked and folded in the
 * fold thread, and the update carries none.
 */
export function acceptedUpdate(
  workerId: string,
  update: Update,
  assignment: Assignment,
  now: number,
  weight: number,
  checked?: CheckedTensors,
): AcceptedUpdate {
  const accepted: AcceptedUpdate = {
    workerId,
    round: update.round,
    samples: update.samples,
    weight,
    finishMs: now - assignment.assignedAt,
    shardIds: assignment.message.shardIds,
    workerTensors: update.workerTensors,
    grads: checked?.grads ?? {},
    losses: update.losses,
    computeMs: update.timing.computeMs,
    fetchMs: update.timing.fetchMs,
    bytes: update.tensors.byteLength,
    receivedAt: now,
  };
  if (checked) accepted.squares = checked.squares;
  return accepted;
}

/** The checks on an update's content, shared by on-time and late updates; `weight` is its weight in the average. */
export function checkContent(rules: ContentRules, workerId: string, update: Update, assignment: Assignment, now: number, weight: number): AcceptedUpdate {
  checkCounts(rules, update, assignment);
  return acceptedUpdate(workerId, update, assignment, now, weight, checkTensors(rules, update.codec, update.tensors));
}
