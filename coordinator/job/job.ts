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
import type { FoldOpen } from './fold-protocol.ts';
import { FoldThread } from './fold-thread.ts';
import { foldRefusal, foldUpdate, mergeThreadFold, openFold, tauOfUpdates, type RoundFold } from './round-fold.ts';
import { initialState, type JobState } from './state.ts';
import { stepWeights } from './step.ts';
import { summarizeRound } from './summary.ts';
import { acceptedUpdate, checkContent, checkCounts, checkOnTime, type ContentRules } from './update-checks.ts';

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
  /** Checks and folds the updates of rounds with training.foldThreadFrom assignments or more; started at the first. */
  private foldThread: FoldThread | undefined;

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
  publishedWeights(): PublishedWeights {
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
  openRound(
    workers: readonly { id: string; batchSize: number }[],
    now: number,
    deadlineMs = this.config.training.roundDeadlineMs,
    copies: ReadonlyMap<string, string> = new Map(),
  ): OpenRound {
    if (this.current) throw new Error(`round ${this.current.round} is still open`);
    const weights = this.publishedWeights();
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
    const from = this.config.training.foldThreadFrom;
    // Loading the thread takes a moment: it does so while the workers compute, not when their updates arrive.
    if (from > 0 && assignments.size >= from) (this.foldThread ??= new FoldThread()).warm();
    return this.current;
  }

  /**
   * Validates an update at the door and keeps it for the round. Throws a
   * TesseraError naming the code and field; a rejected update also counts as
   * that worker's failure for the round, so the round does not wait for it.
   * In a round of training.foldThreadFrom workers or more, the tensors are
   * checked and folded in the fold thread: the answer is then a promise,
   * rejected as the checks would have thrown (the update is pending
   * meanwhile, and the round waits for it).
   */
  acceptUpdate(workerId: string, update: Update, now: number): AcceptedUpdate | Promise<AcceptedUpdate> {
    const round = this.current;
    try {
      if (update.jobId !== this.config.id)
        throw new TesseraError(ErrorCode.UnknownJob, `update for job ${update.jobId} sent to job ${this.config.id}`, { field: 'jobId' });
      if (round && update.round < round.round && this.config.training.lateUpdates === 'stale') return this.lateUpdates.accept(workerId, update, round, now);
      const assignment = checkOnTime(round, workerId, update);
      if (this.foldsInThread(round!, workerId)) return this.acceptInThread(round!, workerId, update, assignment, now);
      const accepted = checkContent(this.contentRules, workerId, update, assignment, now, update.samples);
      round!.updates.set(workerId, accepted);
      // A verification pair's tensors are compared when the round closes; every other update is folded now.
      if (round!.fold && !inVerificationPair(round!, workerId)) foldUpdate(round!.fold, accepted);
      return accepted;
    } catch (error) {
      throw this.refused(round, workerId, update.round, error);
    }
  }

  /** Counts a refused update of the open round as its worker's failure there; returns the error. */
  private refused(round: OpenRound | undefined, workerId: string, updateRound: number, error: unknown): unknown {
    // A duplicate of an update still being checked is refused without failing the one being checked.
    if (round && round.assignments.has(workerId) && !round.updates.has(workerId) && !round.pending?.has(workerId) && updateRound === round.round) {
      const failure = error instanceof TesseraError ? error : new TesseraError(ErrorCode.Internal, String(error));
      round.failures.set(workerId, { workerId, code: failure.code, message: failure.message });
    }
    return error;
  }

  /**
   * True when this update's tensors go to the fold thread: a folded round with
   * enough workers, no aggregators, not a verification pair, and the round's
   * fold did not die with a thread (the rest of that round folds here).
   */
  private foldsInThread(round: OpenRound, workerId: string): boolean {
    const from = this.config.training.foldThreadFrom;
    if (from === 0 || round.assignments.size < from || !round.fold || round.fold.owners.size > 0) return false;
    return !inVerificationPair(round, workerId) && !this.foldThread?.lost(round.round);
  }

  private acceptInThread(round: OpenRound, workerId: string, update: Update, assignment: Assignment, now: number): Promise<AcceptedUpdate> {
    checkCounts(this.contentRules, update, assignment);
    const fold = round.fold!;
    const thread = (fold.thread ??= { workers: new Set(), merged: false });
    const pending = (round.pending ??= new Map());
    this.foldThread ??= new FoldThread();
    // Built before the thread answers, so that the callbacks below hold this record and the round's number rather than
    // `update`: its tensors are a view of the socket's buffer, and through a burst of updates hundreds of those buffers
    // waited for the thread's answers long enough to be promoted, each round, into the old generation.
    const accepted = acceptedUpdate(workerId, update, assignment, now, update.samples);
    const updateRound = update.round;
    const checked = this.foldThread
      .check(round.round, () => this.foldOpen(round, fold), workerId, update.codec, update.tensors)
      .then(
        () => {
          pending.delete(workerId);
          round.updates.set(workerId, accepted);
          fold.folded.add(workerId);
          thread.workers.add(workerId);
          return accepted;
        },
        (error: unknown) => {
          pending.delete(workerId);
          throw this.refused(round, workerId, updateRound, error);
        },
      );
    pending.set(workerId, checked);
    return checked;
  }

  /** What the fold thread opens its fold of a round on: the round's own fold's assignments and options. */
  private foldOpen(round: OpenRound, fold: RoundFold): FoldOpen {
    const { assigned, options } = this.foldInputs(round);
    return {
      type: 'open',
      round: round.round,
      shapes: this.shapes,
      networkOf: Object.fromEntries([...fold.namesOf].flatMap(([network, names]) => names.map((name) => [name, network]))),
      assigned: [...assigned],
      options,
      maxGradNorm: this.config.training.maxGradNorm,
    };
  }

  /** True when the open round has updates in the fold thread: settleFoldThread must run before closeRound. */
  get foldsOffThread(): boolean {
    return !!this.current?.fold?.thread && !this.current.fold.thread.merged;
  }

  /**
   * Before closing a round the fold thread had a part in: takes no more
   * on-time updates, waits for those being checked, then adds what the
   * thread folded to the round's fold. Should the thread have died, the
   * updates it had folded are lost: they become the round's INTERNAL
   * failures (their workers were answered already) and the round closes on
   * the rest.
   */
  async settleFoldThread(): Promise<void> {
    const round = this.current;
    const thread = round?.fold?.thread;
    if (!round || !thread || thread.merged) return;
    round.closing = true;
    await Promise.allSettled([...(round.pending?.values() ?? [])]);
    try {
      mergeThreadFold(round.fold!, await this.foldThread!.close());
    } catch (error) {
      for (const workerId of thread.workers) {
        round.updates.delete(workerId);
        round.failures.set(workerId, { workerId, code: ErrorCode.Internal, message: `its update was lost with the fold thread (${(error as Error).message})` });
      }
      thread.merged = true;
    }
  }

  /** Ends the fold thread, if one was started. */
  dispose(): Promise<void> {
    return this.foldThread?.dispose() ?? Promise.resolve();
  }

  /** Assignments of closed rounds that `workerId` missed and a late update may still fill (training.lateUpdates = 'stale'). */
  missedAssignments(workerId: string): Assignment[] {
    return this.lateUpdates.of(workerId);
  }

  /** Marks an assigned worker as gone for this round (left, crashed, timed out). */
  markFailed(workerId: string, code: RoundFailure['code'], message: string): void {
    const round = this.current;
    // A pending update decides for itself (accepted, or refused as its checks say).
    if (round?.assignments.has(workerId) && !round.updates.has(workerId) && !round.failures.has(workerId) && !round.pending?.has(workerId)) {
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
    if (this.foldsOffThread) throw new Error(`round ${round.round} has updates in the fold thread: settleFoldThread first`);
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
    if (foldRefusal(this.config.training, this.tau) !== undefined) return undefined;
    const { assigned, options } = this.foldInputs(round);
    return openFold(this.shapes, (name) => this.spec.networkOf(name), assigned, options, new Map());
  }

  /** What a round's fold is opened on, here and in the fold thread: each assignment's samples, the share cap, clip and τ. */
  private foldInputs(round: OpenRound): { assigned: Map<string, number>; options: { maxShare: number; clipNorm: number; tau: Record<string, number> } } {
    const { aggregation } = this.config.training;
    return {
      assigned: new Map([...round.assignments].map(([workerId, assignment]) => [workerId, assignment.message.sampleIndices.length])),
      options: { maxShare: aggregation.maxShare, clipNorm: aggregation.clipNorm, tau: { ...this.tau } },
    };
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
