import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors, contentHash, tensorsToArrays } from '../../shared/codec/named.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { findNonFinite, globalNorm } from '../../shared/aggregate/norms.ts';
import { stalenessWeight } from '../../shared/schedule/schedule.ts';
import { dealShards, makeShards, ShardSampler, splitDataset, type ShardCursor } from '../../shared/data/shards.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Assign, Update } from '../../shared/protocol/messages.ts';
import { getModel } from '../../shared/models/registry.ts';
import type { ModelSpec } from '../../shared/models/types.ts';
import { adamStep, createAdamState, type AdamState } from '../../shared/training/adam.ts';
import { emaDecayAt, updateEma } from '../../shared/training/ema.ts';
import { deriveSeed } from '../../shared/training/random.ts';
import { scaledOptimizer } from '../../shared/training/lr-scaling.ts';
import { createMomentum, nesterovStep } from '../../shared/training/nesterov.ts';
import { aggregateRound, type RoundOutlier } from './aggregate-round.ts';
import type { JobConfig } from '../config.ts';
import { checkLosses } from './losses.ts';

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
}

/** Weights of one version, encoded once and shared by every worker that asks. */
export interface PublishedWeights {
  version: number;
  hash: string;
  codec: string;
  bytes: Uint8Array;
}

/** A worker's share of a round. */
export interface Assignment {
  workerId: string;
  message: Assign;
  assignedAt: number;
}

export interface AcceptedUpdate {
  workerId: string;
  /** The round the update was computed for (earlier than the round applying it when late). */
  round: number;
  samples: number;
  /** Its weight in the average: the samples, discounted when late. */
  weight: number;
  /** Assignment to arrival, ms: the finish times the adaptive deadline learns from. */
  finishMs: number;
  /** The data shards the batch was drawn from. */
  shardIds: number[];
  /** Live tensors the worker reported (leak watch). */
  workerTensors?: number;
  grads: NamedArrays;
  losses: Record<string, number>;
  computeMs: number;
  fetchMs: number;
  bytes: number;
  receivedAt: number;
}

/** A worker that was assigned work but whose update will not count, and why. */
export interface RoundFailure {
  workerId: string;
  code: ErrorCode | 'LEFT' | 'DEADLINE';
  message: string;
}

export interface OpenRound {
  round: number;
  version: number;
  startedAt: number;
  deadlineAt: number;
  assignments: Map<string, Assignment>;
  updates: Map<string, AcceptedUpdate>;
  failures: Map<string, RoundFailure>;
  /** Updates of earlier rounds applied here with a staleness weight (training.lateUpdates = 'stale'). */
  late: AcceptedUpdate[];
  /** Verification copies: worker id -> the worker whose assignment it was given again (same indices and seed). */
  copies: Map<string, string>;
}

export interface RoundSummary {
  round: number;
  version: number;
  durationMs: number;
  deadlineMs: number;
  updates: AcceptedUpdate[];
  /** Late updates of earlier rounds applied in this one. */
  late: AcceptedUpdate[];
  failures: RoundFailure[];
  /** Accepted updates left out of the aggregate, and why (a verification copy, a disputed pair, a quarantined worker). */
  excluded: { workerId: string; reason: string }[];
  samples: number;
  losses: Record<string, number>;
  /** Samples of the round over its wall time. */
  samplesPerSecond: number;
  applied: boolean;
  /** Updates (on-time or late) that some network's aggregation rule clipped, trimmed or found beyond its radius. */
  outliers: RoundOutlier[];
}

/**
 * One training job: master weights, optimizer state and the round in
 * progress. It does no I/O and keeps no timers: the runner decides when
 * rounds start and close, this class decides what they contain.
 */
export class Job {
  readonly spec: ModelSpec<any>;
  readonly shapes: Record<string, number[]>;
  readonly state: JobState;
  readonly sampler: ShardSampler;
  /** Examples never trained on, for evaluation and reconstructions. */
  readonly heldOut: number[];
  private published: PublishedWeights | undefined;
  private previous: PublishedWeights | undefined;
  current: OpenRound | undefined;
  /** Assignments of recently closed rounds whose update never came, for late updates: `${workerId}/${round}`. */
  private readonly missed = new Map<string, { assignment: Assignment; version: number }>();

  constructor(
    readonly config: JobConfig,
    shapes: Record<string, number[]>,
    state: JobState,
    datasetCount: number,
  ) {
    this.spec = getModel(config.model.id);
    this.shapes = shapes;
    this.state = state;
    const split = splitDataset(datasetCount, config.dataset.heldOutFraction, config.training.seed);
    this.heldOut = Array.from(split.heldOut);
    this.sampler = new ShardSampler(makeShards(split.train, config.dataset.shards), config.training.seed, state.shardCursors);
    this.state.shardCursors = this.sampler.cursors;
  }

  /** A fresh state: initial weights and zeroed optimizers, one per network. */
  static initialState(spec: ModelSpec<any>, weights: NamedArrays, shardCount: number): JobState {
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

  /** The current weights, encoded and hashed once per version. */
  async publishedWeights(): Promise<PublishedWeights> {
    if (this.published?.version === this.state.version) return this.published;
    const codec = getCodec('f32');
    // A copy: the encoder's output views a larger shared buffer, and this one is kept for the whole version.
    const bytes = codec.encode(arraysToTensors(this.state.weights, this.shapes)).slice();
    const published = { version: this.state.version, hash: await contentHash(bytes), codec: codec.id, bytes };
    // Another call may have published this version while the hash was computed.
    if (this.published?.version !== published.version) {
      this.previous = this.published;
      this.published = published;
    }
    return this.published;
  }

  /** Weights by hash: the current version, or the one before (a worker finishing late may still ask). */
  weightsByHash(hash: string): PublishedWeights | undefined {
    return [this.published, this.previous].find((weights) => weights?.hash === hash);
  }

  /**
   * Opens the next round with one assignment per worker; each gets its shards
   * and a batch of its own size drawn from them. The round closes by
   * `deadlineMs` at the latest. A worker in `copies` (copy -> original) gets
   * the original's assignment again instead, same indices and seed, so the
   * two gradients can be compared.
   */
  async openRound(
    workers: readonly { id: string; batchSize: number }[],
    now: number,
    deadlineMs = this.config.training.roundDeadlineMs,
    copies: ReadonlyMap<string, string> = new Map(),
  ): Promise<OpenRound> {
    if (this.current) throw new Error(`round ${this.current.round} is still open`);
    const weights = await this.publishedWeights();
    const { training } = this.config;
    const round = this.state.round;
    const shards = dealShards(
      this.sampler.shardCount,
      workers.map((worker) => worker.id),
    );
    const assignments = new Map<string, Assignment>();
    for (const worker of workers) {
      if (copies.has(worker.id)) continue;
      const shardIds = shards.get(worker.id)!;
      // More workers than shards: the extra ones share every shard rather than idle.
      const source = shardIds.length > 0 ? shardIds : Array.from({ length: this.sampler.shardCount }, (_, i) => i);
      const message: Assign = {
        type: 'assign',
        jobId: this.config.id,
        round,
        version: this.state.version,
        weightsHash: weights.hash,
        sampleIndices: this.sampler.draw(source, worker.batchSize),
        shardIds: source,
        // The round's seed, the same for every worker: each example's noise comes from it and the example's index
        // (shared/training/noise.ts), so how the examples are split among workers changes nothing.
        seed: deriveSeed(training.seed, round),
        codec: training.codec,
        deadlineMs,
      };
      if (training.mode === 'local') {
        message.localSteps = training.localSteps;
        message.innerOptimizers = this.config.optimizers;
      }
      assignments.set(worker.id, { workerId: worker.id, message, assignedAt: now });
    }
    for (const [copy, original] of copies) {
      const source = assignments.get(original);
      if (!source || !workers.some((worker) => worker.id === copy))
        throw new Error(`copy ${copy} of ${original}: both must be in the round, the original with its own assignment`);
      assignments.set(copy, { workerId: copy, message: { ...source.message }, assignedAt: now });
    }
    this.current = {
      round,
      version: this.state.version,
      startedAt: now,
      deadlineAt: now + deadlineMs,
      assignments,
      updates: new Map(),
      failures: new Map(),
      late: [],
      copies: new Map(copies),
    };
    return this.current;
  }

  /**
   * Validates an update at the door and keeps it for the round. Throws a
   * TesseraError naming the code and field; a rejected update also counts as
   * that worker's failure for the round, so the round does not wait for it.
   */
  acceptUpdate(workerId: string, update: Update, now: number): AcceptedUpdate {
    const round = this.current;
    try {
      if (update.jobId !== this.config.id)
        throw new TesseraError(ErrorCode.UnknownJob, `update for job ${update.jobId} sent to job ${this.config.id}`, { field: 'jobId' });
      if (round && update.round < round.round && this.config.training.lateUpdates === 'stale') return this.acceptLate(workerId, update, round, now);
      if (!round || update.round !== round.round) {
        throw new TesseraError(ErrorCode.WrongRound, `round ${update.round} is not open${round ? ` (open: ${round.round})` : ''}`, { field: 'round' });
      }
      const assignment = round.assignments.get(workerId);
      if (!assignment) throw new TesseraError(ErrorCode.NotAssigned, `worker ${workerId} has no work in round ${round.round}`, { field: 'round' });
      if (round.updates.has(workerId))
        throw new TesseraError(ErrorCode.DuplicateUpdate, `worker ${workerId} already sent round ${round.round}`, { field: 'round' });
      if (round.failures.has(workerId))
        throw new TesseraError(ErrorCode.WrongRound, `round ${round.round} stopped waiting for worker ${workerId}`, { field: 'round' });
      if (update.version !== round.version) {
        throw new TesseraError(ErrorCode.StaleVersion, `computed on version ${update.version}, round ${round.round} trains version ${round.version}`, {
          field: 'version',
        });
      }
      checkWeightsHash(update, assignment);
      const accepted = this.checkContent(workerId, update, assignment, now, update.samples);
      round.updates.set(workerId, accepted);
      return accepted;
    } catch (error) {
      if (round && round.assignments.has(workerId) && !round.updates.has(workerId) && update.round === round.round) {
        const failure = error instanceof TesseraError ? error : new TesseraError(ErrorCode.Internal, String(error));
        round.failures.set(workerId, { workerId, code: failure.code, message: failure.message });
      }
      throw error;
    }
  }

  /** The checks on an update's content, shared by on-time and late updates. */
  private checkContent(workerId: string, update: Update, assignment: Assignment, now: number, weight: number): AcceptedUpdate {
    const assigned = assignment.message.sampleIndices.length;
    if (update.samples !== assigned)
      throw new TesseraError(ErrorCode.InvalidMessage, `expected ${assigned} samples, got ${update.samples}`, { field: 'samples' });
    checkLosses(update.losses, this.spec.lossNames);
    const grads = tensorsToArrays(getCodec(update.codec).decode(update.tensors), this.shapes);
    const nonFinite = findNonFinite(grads);
    if (nonFinite) throw new TesseraError(ErrorCode.NonFinite, `non-finite value at index ${nonFinite.index}`, { field: `tensors.${nonFinite.name}` });
    const norm = globalNorm(grads);
    // The corruption guard (a norm no honest gradient reaches), not the defence against large updates: the
    // aggregation rules clip those in closeRound, bounding their pull without throwing away the worker's round.
    const limit = this.config.training.maxGradNorm;
    if (limit > 0 && norm > limit)
      throw new TesseraError(ErrorCode.NormTooLarge, `gradient norm ${norm.toPrecision(4)} above the job's limit ${limit}`, { field: 'tensors' });
    return {
      workerId,
      round: update.round,
      samples: update.samples,
      weight,
      finishMs: now - assignment.assignedAt,
      shardIds: assignment.message.shardIds,
      workerTensors: update.workerTensors,
      grads,
      losses: update.losses,
      computeMs: update.timing.computeMs,
      fetchMs: update.timing.fetchMs,
      bytes: update.tensors.byteLength,
      receivedAt: now,
    };
  }

  /**
   * An update for a round that closed without it: applied in the open round
   * with its weight discounted per version it is behind, at most once (its
   * missed assignment is forgotten when taken).
   */
  private acceptLate(workerId: string, update: Update, round: OpenRound, now: number): AcceptedUpdate {
    const key = `${workerId}/${update.round}`;
    const missed = this.missed.get(key);
    if (!missed)
      throw new TesseraError(ErrorCode.WrongRound, `round ${update.round} closed and has no missing update from worker ${workerId}`, { field: 'round' });
    if (update.version !== missed.version)
      throw new TesseraError(ErrorCode.StaleVersion, `round ${update.round} trained version ${missed.version}, not ${update.version}`, { field: 'version' });
    checkWeightsHash(update, missed.assignment);
    const { training } = this.config;
    const behind = round.version - missed.version;
    if (behind > training.maxStaleness) {
      this.missed.delete(key);
      throw new TesseraError(ErrorCode.StaleVersion, `${behind} versions behind, more than training.maxStaleness ${training.maxStaleness}`, {
        field: 'version',
      });
    }
    const accepted = this.checkContent(workerId, update, missed.assignment, now, stalenessWeight(update.samples, behind, training.stalenessDecay));
    this.missed.delete(key);
    round.late.push(accepted);
    return accepted;
  }

  /** Keeps the assignments a closed round never got an update for, so a late one can still be placed (and only once). */
  private rememberMissed(round: OpenRound): void {
    if (this.config.training.lateUpdates !== 'stale') return;
    // A copy's samples count once: a late copy is never placed, nor a late original whose copy arrived.
    const coveredByCopy = new Set([...round.copies].filter(([copy]) => round.updates.has(copy)).map(([, original]) => original));
    for (const [workerId, assignment] of round.assignments) {
      if (round.copies.has(workerId) || coveredByCopy.has(workerId)) continue;
      if (!round.updates.has(workerId)) this.missed.set(`${workerId}/${round.round}`, { assignment, version: round.version });
    }
    for (const key of this.missed.keys()) {
      if (Number(key.slice(key.lastIndexOf('/') + 1)) < round.round - MISSED_ROUNDS_KEPT) this.missed.delete(key);
    }
  }

  /** Marks an assigned worker as gone for this round (left, crashed, timed out). */
  markFailed(workerId: string, code: RoundFailure['code'], message: string): void {
    const round = this.current;
    if (round?.assignments.has(workerId) && !round.updates.has(workerId) && !round.failures.has(workerId)) {
      round.failures.set(workerId, { workerId, code, message });
    }
  }

  /** True when every assigned worker has answered or failed. */
  roundComplete(): boolean {
    const round = this.current;
    return !!round && round.updates.size + round.failures.size >= round.assignments.size;
  }

  /**
   * Closes the open round: workers that have not answered are failures; each
   * network's gradients are combined by its aggregation rule (weighted by
   * samples) and each network's optimizer steps. A round with no accepted
   * update leaves the weights as they were. Updates of the workers in
   * `excluded` (worker id -> reason) were accepted but are left out of the aggregate.
   */
  closeRound(now: number, excluded: ReadonlyMap<string, string> = new Map()): RoundSummary {
    const round = this.current;
    if (!round) throw new Error('no open round');
    for (const workerId of round.assignments.keys()) this.markFailed(workerId, 'DEADLINE', 'no update before the round closed');
    this.current = undefined;
    this.state.round += 1;
    this.rememberMissed(round);
    const included = (update: AcceptedUpdate) => !excluded.has(update.workerId);
    // In worker id order, not arrival order: the float sums, and so the weights, replay the same whatever the timing.
    const updates = [...round.updates.values()].filter(included).sort(byWorkerId);
    const late = round.late.filter(included).sort(byWorkerId);
    const contributions = [...updates, ...late];
    const samples = contributions.reduce((sum, update) => sum + update.samples, 0);
    const summary: RoundSummary = {
      round: round.round,
      version: round.version,
      durationMs: now - round.startedAt,
      deadlineMs: round.deadlineAt - round.startedAt,
      updates,
      late,
      failures: [...round.failures.values()],
      excluded: [...round.updates.values(), ...round.late]
        .filter((update) => !included(update))
        .map((update) => ({ workerId: update.workerId, reason: excluded.get(update.workerId)! })),
      samples,
      losses: meanLosses(updates),
      samplesPerSecond: samples / Math.max(1e-3, (now - round.startedAt) / 1000),
      applied: contributions.length > 0,
      outliers: [],
    };
    if (!summary.applied) return summary;
    const { tensors: grads, outliers } = aggregateRound(contributions, this.spec, this.config.training);
    summary.outliers = outliers;
    const { training } = this.config;
    if (training.mode === 'local') {
      // The updates are weight deltas: one outer Nesterov step on all tensors (each network's tensors move by their own delta).
      this.state.outerMomentum ??= createMomentum(this.state.weights);
      nesterovStep(this.state.weights, grads, this.state.outerMomentum, { learningRate: training.outerLearningRate, momentum: training.outerMomentum });
    } else {
      for (const [network, optimizer] of Object.entries(this.state.optimizers)) {
        adamStep(this.state.weights, grads, optimizer, scaledOptimizer(this.config.optimizers[network], samples, training));
      }
    }
    this.state.version += 1;
    this.state.samplesSeen += samples;
    if (this.spec.emaDecay > 0) this.state.ema = updateEma(this.state.ema, this.state.weights, emaDecayAt(this.state.version, this.spec.emaDecay));
    return summary;
  }
}

/** The weights to sample from and export: the moving average when the model keeps one. */
export function samplingWeights(state: JobState): NamedArrays {
  return state.ema ?? state.weights;
}

/** Refuses an update that names other weights than its assignment did (a gradient replayed from another version). */
function checkWeightsHash(update: Update, assignment: Assignment): void {
  const expected = assignment.message.weightsHash;
  if (update.weightsHash !== expected) {
    throw new TesseraError(
      ErrorCode.StaleVersion,
      `computed from weights ${update.weightsHash.slice(0, 12)}…, the assignment named ${expected.slice(0, 12)}…`,
      { field: 'weightsHash' },
    );
  }
}

const byWorkerId = (a: AcceptedUpdate, b: AcceptedUpdate) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0);

/** Rounds a late update may still name: a few more than any maxStaleness in use. */
const MISSED_ROUNDS_KEPT = 8;

/** Losses averaged over the updates, weighted by their samples. */
function meanLosses(updates: readonly AcceptedUpdate[]): Record<string, number> {
  const sums: Record<string, number> = {};
  const weights: Record<string, number> = {};
  for (const update of updates) {
    for (const [name, value] of Object.entries(update.losses)) {
      sums[name] = (sums[name] ?? 0) + value * update.samples;
      weights[name] = (weights[name] ?? 0) + update.samples;
    }
  }
  return Object.fromEntries(Object.keys(sums).map((name) => [name, sums[name] / weights[name]]));
}
