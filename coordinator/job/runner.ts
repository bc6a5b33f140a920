import { EventEmitter } from 'node:events';
import { ErrorCode, type TesseraError } from '../../shared/protocol/errors.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import type { Trainer } from '../../shared/models/types.ts';
import { INIT_FROM_STORE } from '../config.ts';
import { QualityMonitor } from '../quality/monitor.ts';
import type { Scorer } from '../quality/scoring-thread.ts';
import type { RoundRow } from '../../shared/api/round-log.ts';
import { Verifier, type VerifierOptions } from '../verification.ts';
import type { WorkerSession } from '../workers.ts';
import { ConnectedWorkers } from './connected-workers.ts';
import type { Job } from './job.ts';
import { OutputWriter } from './output-writer.ts';
import type { OpenRound, RoundSummary } from './round.ts';
import { RoundDeadline } from './round-deadline.ts';
import { RoundScheduler } from './scheduler.ts';
import type { JobStatus } from '../../shared/api/jobs.ts';
import type { RunnerEvents } from './runner-events.ts';
import type { JobStore } from '../store/job-store.ts';

/** Rounds in a row with every update refused for its norm (or non-finite values) before a job counts as diverged. */
export const DIVERGED_ROUNDS = 3;

/**
 * Drives one job through its states: opens a round when the scheduler finds
 * workers for it, hands out the assignments, keeps the deadline timer, closes
 * the round and tells the round log and the output writer. The Job decides
 * what a round holds, the RoundScheduler who is in it, this class when.
 */
export class JobRunner extends EventEmitter<RunnerEvents> {
  private currentStatus: JobStatus = 'waiting';
  private readonly sessions: ConnectedWorkers;
  private opening = false;
  /** Set while a round waits for its fold thread before closing (Job.settleFoldThread). */
  private closing: Promise<void> | undefined;
  private lastPublished = -1;
  private readonly deadline: RoundDeadline;
  lastRound: RoundSummary | undefined;
  /** Duplicate assignments, their comparison and each worker's trust. */
  readonly verifier: Verifier;
  /** Sample quality scored in the background every output.evalEvery training steps. */
  readonly quality: QualityMonitor;
  private readonly scheduler: RoundScheduler;
  /** Checkpoints, sample grids, reconstructions, the export and the round log, off the round's critical path. */
  readonly outputs: OutputWriter;
  /** The job's output folder. */
  readonly outputDir: string;
  /** Set when the job paused because its training diverged (see watchDivergence): the round and what to do. */
  diverged: { round: number; message: string } | undefined;
  /** Consecutive closed rounds whose every update was refused for its norm or a non-finite value, and by whom. */
  private refusedRounds = 0;
  private readonly refusedBy = new Set<string>();
  /** The most recent rounds, oldest first (the round log's). */
  readonly history: RoundRow[];

  constructor(
    readonly job: Job,
    samplingTrainer: Trainer,
    private readonly clock: () => number = Date.now,
    verification: VerifierOptions = {},
    createScorer?: () => Scorer,
    /** The job's checkpoint, status and round log: its output folder when not given. */
    store?: JobStore,
  ) {
    super();
    this.quality = new QualityMonitor(job, createScorer);
    this.outputs = new OutputWriter(job, samplingTrainer, this.quality, this, clock, store);
    this.outputDir = this.outputs.outputDir;
    this.history = this.outputs.roundLog.history;
    this.verifier = new Verifier(job, verification);
    this.sessions = new ConnectedWorkers(job, this.verifier, clock, (bytes, transport) => this.emit('weightsPushed', bytes, transport));
    this.scheduler = new RoundScheduler(job, this.verifier, clock);
    this.deadline = new RoundDeadline(job, clock, () => this.closeRound());
  }

  get status(): JobStatus {
    return this.currentStatus;
  }

  set status(status: JobStatus) {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    this.emit('status', status);
  }

  get workers(): WorkerSession[] {
    return this.sessions.list;
  }

  /** True once the job will train no more (budget spent or stopped). */
  get ended(): boolean {
    return this.status === 'finished' || this.status === 'stopped';
  }

  /** A worker is (again) connected and ready for the next round. */
  addWorker(session: WorkerSession): void {
    this.sessions.add(session);
    void this.maybeOpenRound();
  }

  /** A worker left or lost its connection: the round stops waiting for it. */
  removeWorker(workerId: string, reason: string): void {
    if (!this.sessions.remove(workerId)) return;
    this.job.markFailed(workerId, 'LEFT', reason);
    this.closeIfComplete();
  }

  /** Validates and keeps an update; answers the worker with ack or reject (once the fold thread checked it, in a large round). */
  receiveUpdate(session: WorkerSession, update: Update): void {
    const answered = this.sessions.answer(session, update);
    if (answered instanceof Promise) void answered.then((refusal) => this.answered(session, refusal));
    else this.answered(session, answered);
  }

  private answered(session: WorkerSession, refusal: TesseraError | undefined): void {
    if (refusal) this.emit('rejected', session.id, refusal);
    this.closeIfComplete();
  }

  pause(): void {
    if (!this.ended) this.status = 'paused';
  }

  resume(): void {
    if (this.status === 'paused') {
      this.diverged = undefined;
      this.refusedRounds = 0;
      this.refusedBy.clear();
      this.status = 'waiting';
      void this.maybeOpenRound();
    }
  }

  /**
   * Ends training for good: the open round closes now with what has arrived,
   * the final checkpoint, samples and model are written, workers are told.
   */
  async stopTraining(): Promise<void> {
    if (this.ended) return;
    this.status = 'stopped';
    if (this.job.current) await this.closeRound();
    for (const session of this.workers) session.channel?.send({ type: 'idle', reason: `job ${this.job.config.id} was stopped` });
    await this.outputs.final(this.lastRound?.round ?? 0);
  }

  /** For shutting the coordinator down: stops timers and the quality scoring, and waits for the output writes already started. */
  async shutdown(): Promise<void> {
    this.deadline.stop();
    if (!this.ended) this.status = 'paused';
    // A round waiting for its fold thread closes first: its round-log line and checkpoint are queued before the writer closes.
    await this.closing;
    await this.outputs.close();
  }

  /** Frees the tfjs model used for samples and export, and ends the scoring and fold threads. */
  dispose(): void {
    this.outputs.dispose();
    this.verifier.dispose();
    void this.job.dispose();
  }

  /** Writes outputs now (e.g. on shutdown): checkpoint always, samples and export as asked. */
  flush(): Promise<void> {
    return this.outputs.flush();
  }

  /** Opens the next round when none is open, the job runs, and enough workers are here. */
  async maybeOpenRound(): Promise<void> {
    if (this.job.current || this.opening || this.status === 'paused' || this.ended) return;
    if (this.job.budgetSpent()) {
      this.finish();
      return;
    }
    const participants = this.scheduler.participants(this.workers);
    if ('waiting' in participants) {
      this.status = 'waiting';
      this.emit('waiting', participants.waiting);
      return;
    }
    const { working, copies } = participants;
    this.opening = true;
    try {
      const weights = this.job.publishedWeights();
      if (weights.version !== this.lastPublished) {
        this.lastPublished = weights.version;
        this.emit('published', weights);
      }
      const round = this.job.openRound(this.scheduler.planBatches(working), this.clock(), this.scheduler.nextDeadlineMs(), copies);
      this.status = 'running';
      this.emit('opening', round);
      this.sessions.assign(round, working, weights);
      this.deadline.start(round);
    } finally {
      this.opening = false;
    }
    this.closeIfComplete();
  }

  /** Closes the open round when every assigned worker is accounted for, or its deadline passed (after a partial, for one). */
  closeIfComplete(): void {
    if (this.job.current && !this.opening && !this.closing && (this.job.roundComplete() || this.deadline.overdue())) void this.closeRound();
  }

  /** Closes the open round: at once, or once the fold thread gave back what it folded of it. */
  private closeRound(): Promise<void> {
    this.deadline.roundClosed();
    const round = this.job.current;
    if (!round) return Promise.resolve();
    if (this.closing) return this.closing;
    if (!this.job.foldsOffThread) {
      this.closed(round);
      return Promise.resolve();
    }
    this.closing = this.job.settleFoldThread().then(() => {
      this.closing = undefined;
      if (this.job.current === round) this.closed(round);
    });
    return this.closing;
  }

  private closed(round: OpenRound): void {
    try {
      this.closeAndGoOn(round);
    } finally {
      // The acks the round held back that no next assignment took along.
      this.sessions.flushAcks();
    }
  }

  /** Records the closed round and steps; opens the next round unless the job stops, pauses or is done. */
  private closeAndGoOn(round: OpenRound): void {
    const { excluded, verdicts } = this.verifier.exclusions(round);
    const summary = this.job.closeRound(this.clock(), excluded);
    this.verifier.observe(summary);
    this.lastRound = summary;
    this.scheduler.roundClosed(summary);
    this.outputs.roundLog.roundClosed(summary, verdicts);
    this.emit('round', summary, this.workers);
    this.quality.roundClosed(summary, this.clock());
    if (this.status === 'stopped') return;
    if (this.watchDivergence(summary)) return;
    if (summary.applied) this.outputs.queue(false);
    if (this.job.budgetSpent()) this.finish();
    else void this.maybeOpenRound();
  }

  /**
   * Pauses the job when its training diverged: DIVERGED_ROUNDS rounds in a
   * row in which every update was refused as NORM_TOO_LARGE or NON_FINITE and
   * none was applied, from at least two workers (or the one the job needs).
   * The weights then make every honest gradient huge, and going on would only
   * quarantine every worker in turn. Says so, with the way back (a new job
   * from this one's sampling weights at a lower learning rate). Returns true
   * when it paused.
   */
  private watchDivergence(summary: RoundSummary): boolean {
    const blownUp = summary.failures.filter((failure) => failure.code === ErrorCode.NormTooLarge || failure.code === ErrorCode.NonFinite);
    if (summary.applied || summary.updates.length > 0 || blownUp.length === 0 || blownUp.length < summary.failures.length) {
      this.refusedRounds = 0;
      this.refusedBy.clear();
      return false;
    }
    this.refusedRounds += 1;
    for (const failure of blownUp) this.refusedBy.add(failure.workerId);
    if (this.refusedRounds < DIVERGED_ROUNDS || this.refusedBy.size < Math.min(2, this.job.config.training.minWorkers)) return false;
    const { config } = this.job;
    // The checkpoint's folder, or with JetStream holding it, the job's id in the store (a new job's coordinator reads it there).
    const from = this.outputs.store.kind === 'folder' ? this.outputDir : `${INIT_FROM_STORE}${config.id}`;
    const rates = Object.entries(config.optimizers)
      .map(([network, optimizer]) => `--set optimizers.${network}.learningRate=${optimizer.learningRate / 4}`)
      .join(' ');
    const message =
      `training diverged: every update of the last ${this.refusedRounds} rounds (to round ${summary.round}) was refused for its gradient norm ` +
      `or non-finite values (${[...new Set(blownUp.map((failure) => failure.code))].join(', ')}), so the weights no longer train; the job is paused. ` +
      `Go on from its sampling weights as a new job at a lower learning rate: --set model.initFrom=${from} ${rates} (and another id)`;
    this.diverged = { round: summary.round, message };
    this.pause();
    this.emit('diverged', message);
    return true;
  }

  private finish(): void {
    if (this.ended) return;
    this.status = 'finished';
    // The final weights' quality is part of the final outputs: 'finished' (on which `npm start` exits) waits for its line.
    void this.outputs.final(this.lastRound?.round ?? 0).then(() => this.emit('finished', this.job.state.version));
  }
}
