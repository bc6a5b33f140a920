import { EventEmitter } from 'node:events';
import { loadDataset } from '../../runtime/node/datasets.ts';
import { appendFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { adaptiveDeadline, splitBySpeed } from '../../shared/schedule/schedule.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { LIMITS } from '../../shared/protocol/messages.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import type { Trainer } from '../../shared/models/types.ts';
import { saveCheckpoint } from '../checkpoint.ts';
import { samplingWeights, type Job, type PublishedWeights, type RoundSummary } from './job.ts';
import { exportLayersModel, sampleGridPng, writeFileAtomic } from '../outputs.ts';
import { QualityMonitor } from '../quality/monitor.ts';
import type { Scorer } from '../quality/scoring-thread.ts';
import { ROUND_LOG, roundRow, type RoundRow } from '../round-log.ts';
import { Verifier, type Verdict, type VerifierOptions } from '../verification.ts';
import { lateMeasurement, noteAssignment, recordSpeed, shareInput, type WorkerSession } from '../workers.ts';

/** Finish times the adaptive deadline learns from: enough for a stable median, recent enough to follow a fleet that changes. */
const FINISH_TIMES_KEPT = 64;
/** Rounds kept in memory for the dashboard's charts (the full log is on disk). */
const HISTORY_ROUNDS = 2000;

/**
 * waiting: too few workers for a round; running: rounds go on; paused: the
 * open round finishes, no new one starts; finished: the round budget is spent;
 * stopped: ended by an admin, final outputs written.
 */
export type JobStatus = 'waiting' | 'running' | 'paused' | 'finished' | 'stopped';

export interface RunnerEvents {
  round: [summary: RoundSummary, workers: WorkerSession[]];
  waiting: [reason: string];
  checkpoint: [path: string, round: number, durationMs: number, bytes: number];
  status: [status: JobStatus];
  samples: [path: string, round: number];
  exported: [dir: string, round: number];
  finished: [round: number];
  rejected: [workerId: string, error: TesseraError];
  /** A new weights version is about to be assigned (transports that broadcast send it now). */
  published: [weights: PublishedWeights];
  outputError: [error: Error];
}

/**
 * Drives one job: decides when rounds open and close, hands out the
 * assignments, and writes the outputs (checkpoints, sample grids, the exported
 * generator). The Job decides what a round holds; this class decides when.
 */
export class JobRunner extends EventEmitter<RunnerEvents> {
  private currentStatus: JobStatus = 'waiting';
  private readonly sessions = new Map<string, WorkerSession>();
  private opening = false;
  private lastPublished = -1;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** The open round's deadline passed with no update: it closes at the first one. */
  private pastDeadline = false;
  /** Output writes run one after another, off the round's critical path. */
  private outputs: Promise<void> = Promise.resolve();
  readonly outputDir: string;
  lastSamplesPath: string | undefined;
  /** When the last checkpoint was written (ms since the epoch), for its age in the metrics. */
  lastCheckpointAt: number | undefined;
  lastRound: RoundSummary | undefined;
  /** The most recent rounds, oldest first. */
  readonly history: RoundRow[] = [];
  /** Recent updates' finish times (assignment to arrival), for the adaptive deadline. */
  private readonly finishTimes: number[] = [];
  /** Duplicate assignments, their comparison and each worker's trust. */
  readonly verifier: Verifier;
  /** Sample quality scored in the background every output.evalEvery training steps. */
  readonly quality: QualityMonitor;

  constructor(
    readonly job: Job,
    private readonly sampler: Trainer,
    private readonly clock: () => number = Date.now,
    verification: VerifierOptions = {},
    createScorer?: () => Scorer,
  ) {
    super();
    this.outputDir = resolve(job.config.output.dir, job.config.id);
    this.verifier = new Verifier(job, verification);
    this.verifier.on('trust', (workerId, trust) => {
      const session = this.sessions.get(workerId);
      if (session) session.trust = trust;
    });
    this.quality = new QualityMonitor(job, createScorer);
    this.quality.on('quality', (row) => this.appendLogLine(JSON.stringify(row)));
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
    return [...this.sessions.values()];
  }

  /** A worker is (again) connected and ready for the next round. */
  addWorker(session: WorkerSession): void {
    this.sessions.set(session.id, session);
    session.trust = this.verifier.trustOf(session.id);
    // A worker back mid-round finds its assignment again, if the round still waits for it.
    const assignment = this.job.current?.assignments.get(session.id);
    if (assignment && !this.job.current!.updates.has(session.id) && !this.job.current!.failures.has(session.id)) {
      session.channel?.send(assignment.message);
    }
    void this.maybeOpenRound();
  }

  /** A worker left or lost its connection: the round stops waiting for it. */
  removeWorker(workerId: string, reason: string): void {
    if (!this.sessions.delete(workerId)) return;
    this.verifier.forget(workerId);
    this.job.markFailed(workerId, 'LEFT', reason);
    this.closeIfComplete();
  }

  /** Validates and keeps an update; answers the worker with ack or reject. */
  receiveUpdate(session: WorkerSession, update: Update): void {
    try {
      const accepted = this.job.acceptUpdate(session.id, update, this.clock());
      session.updatesAccepted += 1;
      session.samplesContributed += accepted.samples;
      session.bytesReceived += accepted.bytes;
      recordSpeed(session, accepted.samples, accepted.finishMs, accepted);
      session.channel?.send({ type: 'ack', round: update.round });
    } catch (error) {
      const failure = error instanceof TesseraError ? error : new TesseraError(ErrorCode.Internal, String(error), { cause: error });
      session.updatesRejected += 1;
      this.verifier.refused(session.id, failure.code);
      // A late update still measured the worker's speed: without it a slow newcomer, cut off by a deadline learned
      // from faster workers, would get the same too-large batch every round and never contribute.
      const late = failure.code === ErrorCode.WrongRound ? lateMeasurement(session, update.round, this.clock()) : undefined;
      if (late) recordSpeed(session, late.samples, late.finishMs, update.timing);
      session.channel?.send({ type: 'reject', round: update.round, ...failure.toWire() });
      this.emit('rejected', session.id, failure);
    }
    this.closeIfComplete();
  }

  /** True once the job will train no more (budget spent or stopped). */
  get ended(): boolean {
    return this.status === 'finished' || this.status === 'stopped';
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
    this.queueOutputs(true);
    for (const session of this.workers) session.channel?.send({ type: 'idle', reason: `job ${this.job.config.id} was stopped` });
    await this.quality.settle(this.lastRound?.round ?? 0, this.clock());
    await this.outputs;
  }

  /** For shutting the coordinator down: stops timers and the quality scoring, and waits for the output writes already started. */
  async shutdown(): Promise<void> {
    clearTimeout(this.deadlineTimer);
    if (!this.ended) this.status = 'paused';
    await this.quality.close();
    await this.outputs;
  }

  /** Held-out digits (top rows) above their reconstructions (bottom rows), for autoencoders. */
  private async writeReconstructions(count: number): Promise<void> {
    const columns = 8;
    const shown = Math.max(columns, Math.floor(Math.min(count, 32) / columns) * columns);
    const dataset = loadDataset(this.job.config.dataset.id);
    // Spread over the held-out set, which is sorted by index and so by digit.
    const step = Math.max(1, Math.floor(this.job.heldOut.length / shown));
    const originals = dataset.batch(Array.from({ length: shown }, (_, i) => this.job.heldOut[(i * step) % this.job.heldOut.length]));
    const reconstructions = await this.sampler.reconstruct!(originals.images);
    const both = new Float32Array(originals.images.length * 2);
    both.set(originals.images);
    both.set(reconstructions, originals.images.length);
    await writeFileAtomic(join(this.outputDir, 'samples', 'reconstructions-latest.png'), sampleGridPng(both, shown * 2, this.job.spec.imageShape, { columns }));
  }

  /** Frees the tfjs model used for samples and export, and ends the scoring thread. */
  dispose(): void {
    this.sampler.dispose();
    this.verifier.dispose();
    void this.quality.close();
  }

  /** Writes outputs now (e.g. on shutdown): checkpoint always, samples and export as asked. */
  async flush(): Promise<void> {
    this.queueOutputs(true);
    await this.outputs;
  }

  private eligibleWorkers(): WorkerSession[] {
    return this.workers.filter((session) => session.channel !== undefined);
  }

  /** Opens the next round when none is open, the job runs, and enough workers are here. */
  async maybeOpenRound(): Promise<void> {
    if (this.job.current || this.opening || this.status === 'paused' || this.ended) return;
    const { training } = this.job.config;
    if (training.rounds > 0 && this.job.state.version >= training.rounds) {
      this.finish();
      return;
    }
    const workers = this.eligibleWorkers();
    if (workers.length < training.minWorkers) {
      this.status = 'waiting';
      this.emit('waiting', `waiting for workers: ${workers.length} connected, the job needs ${training.minWorkers}`);
      return;
    }
    // Quarantined workers only copy others' assignments: with no one else here they rest.
    const plan = this.verifier.plan(workers.map((session) => session.id));
    const working = workers.filter((session) => !plan.resting.includes(session.id));
    if (working.length === 0) {
      this.status = 'waiting';
      this.emit('waiting', `waiting for workers: all ${workers.length} connected are quarantined`);
      return;
    }
    this.opening = true;
    try {
      const weights = await this.job.publishedWeights();
      if (weights.version !== this.lastPublished) {
        this.lastPublished = weights.version;
        this.emit('published', weights);
      }
      const round = await this.job.openRound(this.planBatches(working), this.clock(), this.nextDeadlineMs(), plan.copies);
      this.status = 'running';
      for (const assignment of round.assignments.values()) this.sessions.get(assignment.workerId)?.channel?.send(assignment.message);
      this.deadlineTimer = setTimeout(() => this.onDeadline(), Math.max(0, round.deadlineAt - this.clock()));
    } finally {
      this.opening = false;
    }
    // Workers may have left while the round was being opened.
    for (const session of workers) if (!this.sessions.has(session.id)) this.job.markFailed(session.id, 'LEFT', 'left while the round opened');
    this.closeIfComplete();
  }

  private closeIfComplete(): void {
    if (this.job.current && !this.opening && (this.job.roundComplete() || (this.pastDeadline && this.job.current.updates.size > 0))) this.closeRound();
  }

  /**
   * The round's deadline: close with what has arrived. With nothing arrived
   * yet, closing would only throw the workers' work away (and a worker slower
   * than the learned deadline would never catch up): the round then closes at
   * the first update, or at roundDeadlineMs, whichever comes first.
   */
  private onDeadline(): void {
    const round = this.job.current;
    if (!round) return;
    const ceilingAt = round.startedAt + this.job.config.training.roundDeadlineMs;
    if (round.updates.size > 0 || round.late.length > 0 || this.clock() >= ceilingAt) {
      this.closeRound();
      return;
    }
    this.pastDeadline = true;
    this.deadlineTimer = setTimeout(() => this.closeRound(), Math.max(0, ceilingAt - this.clock()));
  }

  private closeRound(): void {
    clearTimeout(this.deadlineTimer);
    this.pastDeadline = false;
    if (!this.job.current) return;
    const { excluded, verdicts } = this.verifier.exclusions(this.job.current);
    const summary = this.job.closeRound(this.clock(), excluded);
    this.verifier.observe(summary);
    this.lastRound = summary;
    for (const update of summary.updates) this.finishTimes.push(update.finishMs);
    if (this.finishTimes.length > FINISH_TIMES_KEPT) this.finishTimes.splice(0, this.finishTimes.length - FINISH_TIMES_KEPT);
    this.appendRoundLog(summary, verdicts);
    this.emit('round', summary, this.workers);
    this.quality.roundClosed(summary, this.clock());
    if (this.status === 'stopped') return;
    if (summary.applied) this.queueOutputs(false);
    const { rounds } = this.job.config.training;
    if (rounds > 0 && this.job.state.version >= rounds) {
      this.finish();
      return;
    }
    void this.maybeOpenRound();
  }

  /**
   * Each worker's batch for the next round: a round trains batchSize samples
   * per worker, split in proportion to the speed the coordinator measured so
   * all finish together, with no worker above training.maxWorkerShare of the
   * round and no batch growing faster than training.maxBatchGrowth per round
   * (or equally, when the config says so).
   */
  private planBatches(workers: readonly WorkerSession[]): { id: string; batchSize: number }[] {
    const { batchSize: stepBatch, batching, mode, localSteps, maxWorkerShare, maxBatchGrowth } = this.job.config.training;
    // In local-update mode a worker takes localSteps steps of a batch each.
    const batchSize = mode === 'local' ? stepBatch * localSteps : stepBatch;
    const policy = { maxShare: maxWorkerShare, maxGrowth: maxBatchGrowth, minimum: 1 };
    const shares = batching === 'equal' ? workers.map(() => batchSize) : splitBySpeed(workers.map(shareInput), batchSize * workers.length, policy);
    const now = this.clock();
    return workers.map((session, i) => {
      const batch = Math.min(shares[i], LIMITS.maxBatch);
      // The round about to open is job.state.round; it is assigned in this same turn of the event loop.
      noteAssignment(session, this.job.state.round, batch, now);
      return { id: session.id, batchSize: batch };
    });
  }

  /** The next round's deadline: fixed, or learned from recent finish times. */
  private nextDeadlineMs(): number {
    const { training } = this.job.config;
    if (training.deadline === 'fixed') return training.roundDeadlineMs;
    return adaptiveDeadline(this.finishTimes, { floorMs: training.deadlineFloorMs, ceilingMs: training.roundDeadlineMs, madFactor: 4, medianFactor: 1.5 });
  }

  /** One JSON line per closed round in rounds.jsonl: who contributed what, who missed it and why. */
  private appendRoundLog(summary: RoundSummary, verdicts: readonly Verdict[]): void {
    const row = roundRow(summary, this.clock(), verdicts);
    this.history.push(row);
    if (this.history.length > HISTORY_ROUNDS) this.history.splice(0, this.history.length - HISTORY_ROUNDS);
    this.appendLogLine(JSON.stringify(row));
  }

  /** Appends a line to the round log, after the writes already queued. */
  private appendLogLine(line: string): void {
    this.outputs = this.outputs
      .then(async () => {
        await mkdir(this.outputDir, { recursive: true });
        await appendFile(join(this.outputDir, ROUND_LOG), `${line}\n`);
      })
      .catch((error: Error) => {
        this.emit('outputError', error);
      });
  }

  private finish(): void {
    if (this.ended) return;
    this.status = 'finished';
    this.queueOutputs(true);
    // The final weights' quality is part of the final outputs: 'finished' (on which `npm start` exits) waits for its line.
    void this.quality
      .settle(this.lastRound?.round ?? 0, this.clock())
      .then(() => this.outputs)
      .then(() => this.emit('finished', this.job.state.version));
  }

  /**
   * Snapshots the state now (before the next round changes the weights) and
   * writes what is due in the background, one write after another.
   */
  private queueOutputs(force: boolean): void {
    const { output, training } = this.job.config;
    // Outputs are due by training steps taken, which rounds that applied nothing do not advance.
    const round = this.job.state.version;
    const wantCheckpoint = force || round % output.checkpointEvery === 0;
    const wantSamples = force || round % output.sampleEvery === 0;
    const wantExport = force || round % output.exportEvery === 0;
    if (!wantCheckpoint && !wantSamples && !wantExport) return;
    const state = structuredClone(this.job.state);
    const savedAt = new Date().toISOString();
    const write = async () => {
      if (wantCheckpoint) {
        const started = performance.now();
        const { path, bytes } = await saveCheckpoint(this.outputDir, { config: this.job.config, state, savedAt }, this.job.shapes);
        this.lastCheckpointAt = Date.now();
        this.emit('checkpoint', path, round, performance.now() - started, bytes);
      }
      if (!wantSamples && !wantExport) return;
      this.sampler.setWeights(samplingWeights(state));
      if (wantSamples) {
        const { images } = await this.sampler.sample(output.sampleCount, training.seed);
        const png = sampleGridPng(images, output.sampleCount, this.job.spec.imageShape);
        const path = join(this.outputDir, 'samples', `round-${String(round).padStart(6, '0')}.png`);
        await writeFileAtomic(path, png);
        await writeFileAtomic(join(this.outputDir, 'samples', 'latest.png'), png);
        if (this.sampler.reconstruct) await this.writeReconstructions(output.sampleCount);
        this.lastSamplesPath = path;
        this.emit('samples', path, round);
      }
      if (wantExport) {
        const dir = join(this.outputDir, 'model');
        await exportLayersModel(this.sampler.exportModel(), dir, { round, version: state.version, jobId: this.job.config.id });
        this.emit('exported', dir, round);
      }
    };
    this.outputs = this.outputs.then(write).catch((error: Error) => {
      this.emit('outputError', error);
    });
  }
}
