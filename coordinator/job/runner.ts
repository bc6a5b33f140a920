import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Update } from '../../shared/protocol/messages.ts';
import type { Trainer } from '../../shared/models/types.ts';
import { QualityMonitor } from '../quality/monitor.ts';
import type { Scorer } from '../quality/scoring-thread.ts';
import { ROUND_LOG, type RoundRow } from '../round-log.ts';
import { Verifier, type VerifierOptions } from '../verification.ts';
import type { WorkerSession } from '../workers.ts';
import { ConnectedWorkers } from './connected-workers.ts';
import type { Job } from './job.ts';
import { OutputWriter } from './output-writer.ts';
import type { RoundSummary } from './round.ts';
import { RoundDeadline } from './round-deadline.ts';
import { RoundLogWriter } from './round-log-writer.ts';
import { RoundScheduler } from './scheduler.ts';
import type { JobStatus, RunnerEvents } from './runner-events.ts';

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
  private lastPublished = -1;
  private readonly deadline: RoundDeadline;
  lastRound: RoundSummary | undefined;
  /** Duplicate assignments, their comparison and each worker's trust. */
  readonly verifier: Verifier;
  /** Sample quality scored in the background every output.evalEvery training steps. */
  readonly quality: QualityMonitor;
  readonly scheduler: RoundScheduler;
  /** Checkpoints, sample grids, reconstructions and the export, off the round's critical path. */
  readonly outputs: OutputWriter;
  readonly roundLog: RoundLogWriter;

  constructor(
    readonly job: Job,
    samplingTrainer: Trainer,
    private readonly clock: () => number = Date.now,
    verification: VerifierOptions = {},
    createScorer?: () => Scorer,
  ) {
    super();
    this.outputs = new OutputWriter(job, samplingTrainer, this);
    this.roundLog = new RoundLogWriter(join(this.outputs.outputDir, ROUND_LOG), (write) => this.outputs.enqueue(write), clock);
    this.verifier = new Verifier(job, verification);
    this.sessions = new ConnectedWorkers(job, this.verifier, clock);
    this.scheduler = new RoundScheduler(job, this.verifier, clock);
    this.deadline = new RoundDeadline(job, clock, () => this.closeRound());
    this.quality = new QualityMonitor(job, createScorer);
    this.quality.on('quality', (row) => this.roundLog.quality(row));
    this.quality.on('failed', (round, error) => this.emit('outputError', new Error(`quality scoring after round ${round} failed: ${error.message}`)));
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

  /** The job's output folder. */
  get outputDir(): string {
    return this.outputs.outputDir;
  }

  /** The most recent rounds, oldest first. */
  get history(): RoundRow[] {
    return this.roundLog.history;
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

  /** Validates and keeps an update; answers the worker with ack or reject. */
  receiveUpdate(session: WorkerSession, update: Update): void {
    const refusal = this.sessions.answer(session, update);
    if (refusal) this.emit('rejected', session.id, refusal);
    this.closeIfComplete();
  }

  pause(): void {
    if (!this.ended) this.status = 'paused';
  }

  resume(): void {
    if (this.status === 'paused') {
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
    if (this.job.current) this.closeRound();
    this.outputs.queue(true);
    for (const session of this.workers) session.channel?.send({ type: 'idle', reason: `job ${this.job.config.id} was stopped` });
    await this.quality.settle(this.lastRound?.round ?? 0, this.clock());
    await this.outputs.settled();
  }

  /** For shutting the coordinator down: stops timers and the quality scoring, and waits for the output writes already started. */
  async shutdown(): Promise<void> {
    this.deadline.stop();
    if (!this.ended) this.status = 'paused';
    await this.quality.close();
    await this.outputs.settled();
  }

  /** Frees the tfjs model used for samples and export, and ends the scoring thread. */
  dispose(): void {
    this.outputs.dispose();
    this.verifier.dispose();
    void this.quality.close();
  }

  /** Writes outputs now (e.g. on shutdown): checkpoint always, samples and export as asked. */
  async flush(): Promise<void> {
    this.outputs.queue(true);
    await this.outputs.settled();
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
      const weights = await this.job.publishedWeights();
      if (weights.version !== this.lastPublished) {
        this.lastPublished = weights.version;
        this.emit('published', weights);
      }
      const round = await this.job.openRound(this.scheduler.planBatches(working), this.clock(), this.scheduler.nextDeadlineMs(), copies);
      this.status = 'running';
      for (const assignment of round.assignments.values()) this.sessions.get(assignment.workerId)?.channel?.send(assignment.message);
      this.deadline.start(round);
    } finally {
      this.opening = false;
    }
    // Workers may have left while the round was being opened.
    for (const session of working) if (!this.sessions.has(session.id)) this.job.markFailed(session.id, 'LEFT', 'left while the round opened');
    this.closeIfComplete();
  }

  private closeIfComplete(): void {
    if (this.job.current && !this.opening && (this.job.roundComplete() || this.deadline.overdue())) this.closeRound();
  }

  private closeRound(): void {
    this.deadline.roundClosed();
    if (!this.job.current) return;
    const { excluded, verdicts } = this.verifier.exclusions(this.job.current);
    const summary = this.job.closeRound(this.clock(), excluded);
    this.verifier.observe(summary);
    this.lastRound = summary;
    this.scheduler.roundClosed(summary);
    this.roundLog.roundClosed(summary, verdicts);
    this.emit('round', summary, this.workers);
    this.quality.roundClosed(summary, this.clock());
    if (this.status === 'stopped') return;
    if (summary.applied) this.outputs.queue(false);
    if (this.job.budgetSpent()) {
      this.finish();
      return;
    }
    void this.maybeOpenRound();
  }

  private finish(): void {
    if (this.ended) return;
    this.status = 'finished';
    this.outputs.queue(true);
    // The final weights' quality is part of the final outputs: 'finished' (on which `npm start` exits) waits for its line.
    void this.quality
      .settle(this.lastRound?.round ?? 0, this.clock())
      .then(() => this.outputs.settled())
      .then(() => this.emit('finished', this.job.state.version));
  }
}
