import type { NamedArrays } from '../../shared/codec/types.ts';
import { makeShards, ShardSampler, splitDataset } from '../../shared/data/shards.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import { getModel } from '../../shared/models/registry.ts';
import type { ModelSpec } from '../../shared/models/types.ts';
import type { JobConfig } from '../../shared/api/job-config.ts';
import { LateUpdates } from './late-updates.ts';
import { WeightsPublisher, type PublishedWeights } from './published-weights.ts';
import type { ExclusionReason, RoundFailure } from '../../shared/api/round-log.ts';
import { assignRound, inVerificationPair, type AcceptedUpdate, type Assignment, type OpenRound, type RoundSummary } from './round.ts';
import { foldRefusal, foldUpdate, openFold, tauOfUpdates, type RoundFold } from './round-fold.ts';
import { initialState, type JobState } from './state.ts';
import { stepWeights } from './step.ts';
import { summarizeRound } from './summary.ts';
import { checkContent, checkOnTime, type ContentRules } from './update-checks.ts';

/**
 * One training job: master weights, optimizer state and the round in
 * progress. It does no I/O and keeps no timers: the runner decides when
 * rounds start and close, this class decides what they contain.
 */
export class Job {
  readonly spec: ModelSpec<any>;
  readonly shapes: Record<string, number[]>;
  readonly state: JobState;
  /** Draws each round's examples from the shards, resuming from the state's cursors. */
  readonly shardSampler: ShardSampler;
  /** Examples never trained on, for evaluation and reconstructions. */
  readonly heldOut: number[];
  current: OpenRound | undefined;
  /**
   * Each network's clip scale τ, learnt from the last round: the next round's
   * updates are folded with it as they arrive (round-fold.ts), by this
   * coordinator and by aggregators. Empty until a round applied, and after a
   * restart: that round is buffered and aggregated whole.
   */
  readonly tau: Record<string, number> = {};
  private readonly publisher: WeightsPublisher;
  private readonly contentRules: ContentRules;
  private readonly lateUpdates: LateUpdates;

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
    this.shardSampler = new ShardSampler(makeShards(split.train, config.dataset.shards), config.training.seed, state.shardCursors);
    this.state.shardCursors = this.shardSampler.cursors;
    this.publisher = new WeightsPublisher(state, shapes);
    this.contentRules = { lossNames: this.spec.lossNames, shapes, maxGradNorm: config.training.maxGradNorm };
    this.lateUpdates = new LateUpdates(config.training, this.contentRules);
  }

  /** A fresh state: initial weights and zeroed optimizers, one per network. */
  static initialState(spec: ModelSpec<any>, weights: NamedArrays, shardCount: number): JobState {
    return initialState(spec, weights, shardCount);
  }

  /** The current weights, encoded and hashed once per version. */
  publishedWeights(): Promise<PublishedWeights> {
    return this.publisher.current();
  }

  /** Weights by hash: the current version, or the one before (a worker finishing late may still ask). */
  weightsByHash(hash: string): PublishedWeights | undefined {
    return this.publisher.byHash(hash);
  }

  /**
   * Opens the next round with one assignment per worker (see assignRound). The
   * round closes by `deadlineMs` at the latest. A worker in `copies` (copy ->
   * original) gets the original's assignment again.
   */
  async openRound(
    workers: readonly { id: string; batchSize: number }[],
    now: number,
    deadlineMs = this.config.training.roundDeadlineMs,
    copies: ReadonlyMap<string, string> = new Map(),
  ): Promise<OpenRound> {
    if (this.current) throw new Error(`round ${this.current.round} is still open`);
    const weights = await this.publishedWeights();
    const { round, version } = this.state;
    const plan = { round, version, weightsHash: weights.hash, deadlineMs, now };
    const assignments = assignRound(this.config, this.shardSampler, plan, workers, copies);
    this.current = {
      round,
      version,
      startedAt: now,
      deadlineAt: now + deadlineMs,
      assignments,
      updates: new Map(),
      failures: new Map(),
      late: [],
      copies: new Map(copies),
    };
    this.current.fold = this.foldFor(this.current);
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
      if (round && update.round < round.round && this.config.training.lateUpdates === 'stale') return this.lateUpdates.accept(workerId, update, round, now);
      const assignment = checkOnTime(round, workerId, update);
      const accepted = checkContent(this.contentRules, workerId, update, assignment, now, update.samples);
      round!.updates.set(workerId, accepted);
      // A verification pair's tensors are compared when the round closes; every other update is folded now.
      if (round!.fold && !inVerificationPair(round!, workerId)) foldUpdate(round!.fold, accepted);
      return accepted;
    } catch (error) {
      if (round && round.assignments.has(workerId) && !round.updates.has(workerId) && update.round === round.round) {
        const failure = error instanceof TesseraError ? error : new TesseraError(ErrorCode.Internal, String(error));
        round.failures.set(workerId, { workerId, code: failure.code, message: failure.message });
      }
      throw error;
    }
  }

  /** Assignments of closed rounds that `workerId` missed and a late update may still fill (training.lateUpdates = 'stale'). */
  missedAssignments(workerId: string): Assignment[] {
    return this.lateUpdates.of(workerId);
  }

  /** Marks an assigned worker as gone for this round (left, crashed, timed out). */
  markFailed(workerId: string, code: RoundFailure['code'], message: string): void {
    const round = this.current;
    if (round?.assignments.has(workerId) && !round.updates.has(workerId) && !round.failures.has(workerId)) {
      round.failures.set(workerId, { workerId, code, message });
    }
  }

  /** True once the job has taken its training.rounds steps (0: no budget). */
  budgetSpent(): boolean {
    const { rounds } = this.config.training;
    return rounds > 0 && this.state.version >= rounds;
  }

  /** True when every assigned worker has answered or failed. */
  roundComplete(): boolean {
    const round = this.current;
    return !!round && round.updates.size + round.failures.size >= round.assignments.size;
  }

  /**
   * Closes the open round: workers that have not answered are failures; the
   * contributions make one training step (stepWeights). A round with no
   * accepted update leaves the weights as they were. Updates of the workers in
   * `excluded` (worker id -> reason) were accepted but are left out of the aggregate.
   */
  closeRound(now: number, excluded: ReadonlyMap<string, ExclusionReason> = new Map()): RoundSummary {
    const round = this.current;
    if (!round) throw new Error('no open round');
    for (const workerId of round.assignments.keys()) this.markFailed(workerId, 'DEADLINE', 'no update before the round closed');
    this.current = undefined;
    this.state.round += 1;
    this.lateUpdates.remember(round);
    const summary = summarizeRound(round, now, excluded);
    if (summary.applied) summary.outliers = stepWeights(this.state, [...summary.updates, ...summary.late], this.spec, this.config, round.fold);
    this.learnTau(round, summary);
    return summary;
  }

  /**
   * The round's fold when it can be folded as updates arrive (see foldRefusal),
   * over its assignments' samples. Aggregators, when they run, replace it with
   * theirs, which also knows which workers they own.
   */
  private foldFor(round: OpenRound): RoundFold | undefined {
    const { training } = this.config;
    if (foldRefusal(training, this.tau) !== undefined) return undefined;
    const assigned = new Map([...round.assignments].map(([workerId, assignment]) => [workerId, assignment.message.sampleIndices.length]));
    const options = { maxShare: training.aggregation.maxShare, clipNorm: training.aggregation.clipNorm, tau: { ...this.tau } };
    return openFold(this.shapes, (name) => this.spec.networkOf(name), assigned, options, new Map());
  }

  /** τ for the next round: from the fold's norms, or from the updates' own when the round was aggregated whole. */
  private learnTau(round: OpenRound, summary: RoundSummary): void {
    if (round.fold) {
      for (const [network, mean] of Object.entries(round.fold.means)) {
        const tau = mean.nextTau();
        if (tau > 0) this.tau[network] = tau;
      }
    } else {
      Object.assign(
        this.tau,
        tauOfUpdates(summary.updates, (name) => this.spec.networkOf(name), this.config.training.aggregation.maxShare),
      );
    }
  }
}
