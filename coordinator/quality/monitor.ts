import { EventEmitter } from 'node:events';
import { deriveSeed } from '../../shared/training/random.ts';
import type { Job } from '../job/job.ts';
import { samplingWeights } from '../job/state.ts';
import type { QualityCounts } from '../../shared/api/jobs.ts';
import type { QualityRow } from '../../shared/api/round-log.ts';
import { hasEvalDataset } from './datasets.ts';
import { ScoringThread, type Scorer } from './scoring-thread.ts';

/** Quality rows kept in memory for the API and the dashboard (the full record is the round log). */
const HISTORY_KEPT = 2000;
/** Mixed into training.seed for the samples' noise: a stream no round's noise draws from. */
const QUALITY_STREAM = 0x5c0e;

export interface QualityEvents {
  /** A scoring finished: the line for the round log. */
  quality: [row: QualityRow];
  /** A scoring fell due while the previous one still ran, and was not started. */
  skipped: [round: number];
  failed: [round: number, error: Error];
}

/**
 * Sample quality during training: every output.evalEvery training steps, the
 * sampling weights (the EMA where the model keeps one) go to a scorer off the
 * round's path (a worker_thread by default) and the report comes back as a
 * round-log line. Rounds never wait for it: a scoring that falls due while
 * the previous one still runs is skipped and counted, not queued.
 */
export class QualityMonitor extends EventEmitter<QualityEvents> {
  /** Recent quality rows, oldest first. */
  readonly history: QualityRow[] = [];
  readonly counts: QualityCounts = { scored: 0, skipped: 0, failed: 0 };
  private scorer: Scorer | undefined;
  private running: Promise<void> | undefined;
  /** The weights version last scored or being scored. */
  private lastVersion: number | undefined;
  /** When the job's first round opened (ms since the epoch): wallMs counts from here. */
  private startedAt: number | undefined;
  private closed = false;

  constructor(
    private readonly job: Job,
    private readonly createScorer: () => Scorer = () => new ScoringThread(),
  ) {
    super();
  }

  /** The most recent figures, if any. */
  get latest(): QualityRow | undefined {
    return this.history.at(-1);
  }

  /** True while a scoring runs. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** After a restart: the quality lines the round log kept, and when the job's first round opened. */
  restore(rows: readonly QualityRow[], startedAt: number | undefined): void {
    this.history.push(...rows.slice(-HISTORY_KEPT));
    this.lastVersion = rows.at(-1)?.version;
    this.startedAt ??= startedAt;
  }

  /** A round closed at `now`: scores the sampling weights when the training steps reached a multiple of output.evalEvery. */
  roundClosed(summary: { round: number; applied: boolean; durationMs: number }, now: number): void {
    this.startedAt ??= now - summary.durationMs;
    const every = this.evalEvery();
    if (every === 0 || !summary.applied || this.job.state.version % every !== 0) return;
    this.begin(summary.round, now);
  }

  /**
   * The job ended (its budget spent, or stopped): waits for the scoring in
   * flight, then scores the final weights unless that version was scored. A
   * job shorter than evalEvery steps is not scored at its end either: it had
   * no scoring in its life, and a short run (a test, a smoke run) should not
   * wait seconds for one at exit.
   */
  async settle(round: number, now: number): Promise<void> {
    await this.running;
    const { version } = this.job.state;
    const every = this.evalEvery();
    if (every === 0 || version < every || this.lastVersion === version) return;
    this.begin(round, now);
    await this.running;
  }

  /** Ends the scorer (a scoring in flight is dropped, not counted). */
  async close(): Promise<void> {
    this.closed = true;
    await this.scorer?.close();
  }

  /** output.evalEvery, or 0 for a dataset without an evaluator (a folder of the user's images): nothing to score against. */
  private evalEvery(): number {
    return hasEvalDataset(this.job.config.dataset.id) ? this.job.config.output.evalEvery : 0;
  }

  private begin(round: number, now: number): void {
    if (this.closed) return;
    if (this.running) {
      this.counts.skipped += 1;
      this.emit('skipped', round);
      return;
    }
    const { config, state } = this.job;
    const facts = {
      kind: 'quality' as const,
      round,
      version: state.version,
      samplesSeen: state.samplesSeen,
      wallMs: Math.round(now - (this.startedAt ?? now)),
      closedAt: new Date(now).toISOString(),
    };
    this.scorer ??= this.createScorer();
    const scoring = this.scorer.score({
      model: config.model,
      dataset: { id: config.dataset.id, heldOutFraction: config.dataset.heldOutFraction, splitSeed: config.training.seed },
      weights: samplingWeights(state),
      count: config.output.evalSamples,
      seed: deriveSeed(config.training.seed, QUALITY_STREAM),
    });
    this.lastVersion = state.version;
    this.running = scoring
      .then(
        (report) => {
          if (this.closed) return;
          const row: QualityRow = { ...facts, ...report };
          this.history.push(row);
          if (this.history.length > HISTORY_KEPT) this.history.splice(0, this.history.length - HISTORY_KEPT);
          this.counts.scored += 1;
          this.emit('quality', row);
        },
        (error: Error) => {
          if (this.closed) return;
          this.counts.failed += 1;
          this.emit('failed', round, error);
        },
      )
      .finally(() => (this.running = undefined));
  }
}
