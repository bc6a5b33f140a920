import type { EventEmitter } from 'node:events';
import { join, resolve } from 'node:path';
import { jobData } from '../job-data.ts';
import type { Trainer } from '../../shared/models/types.ts';
import { encodeCheckpoint } from '../checkpoint.ts';
import { exportLayersModel, sampleGridPng, writeFileAtomic } from '../outputs.ts';
import type { QualityMonitor } from '../quality/monitor.ts';
import { FolderStore } from '../store/folder-store.ts';
import type { JobStatusRecord, JobStore } from '../store/job-store.ts';
import type { JobStatus } from '../../shared/api/jobs.ts';
import type { Job } from './job.ts';
import { RoundLogWriter } from './round-log-writer.ts';
import type { RunnerEvents } from './runner-events.ts';
import { samplingWeights } from './state.ts';

/**
 * Writes a job's outputs: checkpoints, sample grids, reconstructions and the
 * exported model, each when the config makes it due, and the round log with
 * the quality lines of the background scoring. Writes run one after another
 * in the background, off the round's critical path; a failed write is
 * reported as an `outputError` event and the next one still runs. The job's
 * state (checkpoint, status, round log) goes to its store; samples and the
 * export, which are outputs and not state, to its output folder.
 */
export class OutputWriter {
  /** The job's output folder: output.dir/<job id>. */
  readonly outputDir: string;
  /** The job's checkpoint, status and round log. */
  readonly store: JobStore;
  lastSamplesPath: string | undefined;
  /** When the last checkpoint was written (ms since the epoch), for its age in the metrics. */
  lastCheckpointAt: number | undefined;
  readonly roundLog: RoundLogWriter;
  private writes: Promise<void> = Promise.resolve();
  /**
   * Set by `close`: the store is closed, so a write queued after it (a round
   * closed by a late message while the transports shut down) is dropped, not
   * written into a folder that may be being removed.
   */
  private closed = false;
  private status: JobStatus = 'waiting';
  private lastCheckpoint: JobStatusRecord['checkpoint'] = null;

  constructor(
    private readonly job: Job,
    /** The tfjs model that draws the samples and is exported; its weights are set from each snapshot. */
    private readonly samplingTrainer: Trainer,
    private readonly quality: QualityMonitor,
    private readonly events: EventEmitter<RunnerEvents>,
    private readonly clock: () => number,
    /** Where the checkpoint, the status and the round log go: the output folder when not given. */
    store?: JobStore,
  ) {
    this.outputDir = resolve(job.config.output.dir, job.config.id);
    this.store = store ?? new FolderStore(this.outputDir);
    this.roundLog = new RoundLogWriter(this.store, (write) => this.enqueue(write), clock);
    events.on('status', (status) => {
      this.status = status;
      this.enqueue(() => this.putStatus());
    });
    quality.on('quality', (row) => this.roundLog.quality(row));
    quality.on('failed', (round, error) => events.emit('outputError', new Error(`quality scoring after round ${round} failed: ${error.message}`)));
  }

  /** Runs `write` after the writes already queued. */
  enqueue(write: () => Promise<void>): void {
    if (this.closed) return;
    this.writes = this.writes.then(write).catch((error: Error) => {
      this.events.emit('outputError', error);
    });
  }

  /** Resolves when the writes queued so far are done. */
  settled(): Promise<void> {
    return this.writes;
  }

  /**
   * Snapshots the state now (before the next round changes the weights) and
   * queues what is due: with `force`, a checkpoint, samples and the export.
   */
  queue(force: boolean): void {
    const { output, training } = this.job.config;
    // Outputs are due by training steps taken, which rounds that applied nothing do not advance.
    const round = this.job.state.version;
    const wantCheckpoint = force || round % output.checkpointEvery === 0;
    const wantSamples = force || round % output.sampleEvery === 0;
    const wantExport = force || round % output.exportEvery === 0;
    if (!wantCheckpoint && !wantSamples && !wantExport) return;
    const state = structuredClone(this.job.state);
    const savedAt = new Date().toISOString();
    this.enqueue(async () => {
      if (wantCheckpoint) {
        const started = performance.now();
        const bytes = encodeCheckpoint({ config: this.job.config, state, savedAt }, this.job.shapes);
        await this.store.saveCheckpoint(bytes);
        this.lastCheckpointAt = Date.now();
        this.lastCheckpoint = { round: state.round, version: state.version, savedAt };
        this.events.emit('checkpoint', this.store.checkpointLocation, round, performance.now() - started, bytes.byteLength);
        await this.putStatus();
      }
      if (!wantSamples && !wantExport) return;
      this.samplingTrainer.setWeights(samplingWeights(state));
      if (wantSamples) {
        const { images } = await this.samplingTrainer.sample(output.sampleCount, training.seed);
        const png = sampleGridPng(images, output.sampleCount, this.job.config.dataset.shape);
        const path = join(this.outputDir, 'samples', `round-${String(round).padStart(6, '0')}.png`);
        await writeFileAtomic(path, png);
        await writeFileAtomic(join(this.outputDir, 'samples', 'latest.png'), png);
        if (this.samplingTrainer.reconstruct) await this.writeReconstructions(output.sampleCount);
        this.lastSamplesPath = path;
        this.events.emit('samples', path, round);
      }
      if (wantExport) {
        const dir = join(this.outputDir, 'model');
        await exportLayersModel(this.samplingTrainer.exportModel(), dir, { round, version: state.version, jobId: this.job.config.id });
        this.events.emit('exported', dir, round);
      }
    });
  }

  /** Writes a checkpoint, samples and the export now (e.g. on shutdown), after the writes already queued. */
  async flush(): Promise<void> {
    this.queue(true);
    await this.settled();
  }

  /**
   * The job ended after `round`: queues the final checkpoint, samples and
   * export, and resolves once they and the final weights' quality line are written.
   */
  async final(round: number): Promise<void> {
    this.queue(true);
    await this.quality.settle(round, this.clock());
    await this.settled();
  }

  /** For shutting down: ends the quality scoring, waits for the writes already started, and closes the store. */
  async close(): Promise<void> {
    await this.quality.close();
    // Until nothing more was queued while waiting: a round closed meanwhile (a worker's departure arriving over NATS
    // while the coordinator shuts down) queues its line after the writes awaited, and would write into the folder after
    // close resolved, while a caller removes it (transport-contract.test.ts saw ENOTEMPTY).
    let writes: Promise<void>;
    do {
      writes = this.writes;
      await writes;
    } while (writes !== this.writes);
    this.closed = true;
    await this.store.close();
  }

  /** Queues the status record now (when the job opens): its config, status and last checkpoint. */
  recordStatus(checkpoint: JobStatusRecord['checkpoint']): void {
    this.lastCheckpoint = checkpoint;
    this.enqueue(() => this.putStatus());
  }

  private putStatus(): Promise<void> {
    return this.store.putStatus({
      config: this.job.config,
      status: this.status,
      checkpoint: this.lastCheckpoint,
      updatedAt: new Date(this.clock()).toISOString(),
    });
  }

  /** Frees the tfjs model used for samples and export, and ends the scoring thread. */
  dispose(): void {
    this.samplingTrainer.dispose();
    void this.quality.close();
  }

  /** Held-out images (top rows) above their reconstructions (bottom rows), for autoencoders. */
  private async writeReconstructions(count: number): Promise<void> {
    const columns = 8;
    const shown = Math.max(columns, Math.floor(Math.min(count, 32) / columns) * columns);
    const dataset = jobData(this.job.config).dataset();
    const { heldOut } = this.job;
    // Spread over the held-out set, which is sorted by index and so by digit.
    const step = Math.max(1, Math.floor(heldOut.length / shown));
    const originals = dataset.batch(Array.from({ length: shown }, (_, i) => heldOut[(i * step) % heldOut.length]));
    const reconstructions = await this.samplingTrainer.reconstruct!(originals.images);
    const both = new Float32Array(originals.images.length * 2);
    both.set(originals.images);
    both.set(reconstructions, originals.images.length);
    await writeFileAtomic(
      join(this.outputDir, 'samples', 'reconstructions-latest.png'),
      sampleGridPng(both, shown * 2, this.job.config.dataset.shape, { columns }),
    );
  }
}
