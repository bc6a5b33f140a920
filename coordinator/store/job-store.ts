import type { JobConfig } from '../../shared/api/job-config.ts';
import type { JobStatus } from '../../shared/api/jobs.ts';

/**
 * What the coordinator must not lose of a job, behind one interface: its
 * checkpoint, its config and status, and its round log. Two kinds: a local
 * folder (FolderStore, the default) and JetStream (JetStreamStore, with
 * `--store nats`). Sample grids, the exported model and the secrets are
 * outputs of this process and stay in the job's folder either way.
 *
 * The store holds bytes and lines; what they mean (checkpoint.ts,
 * round-log.ts) is not its business, except that a round-log line is a JSON
 * object with an integer `round`, which trimming reads.
 */
export interface JobStore {
  /** `folder` or `nats`, as `--store` names them. */
  readonly kind: 'folder' | 'nats';
  /** Where the checkpoint goes, for log lines: a file path, or `nats object store BUCKET/OBJECT`. */
  readonly checkpointLocation: string;

  /**
   * Replaces the checkpoint. Resolves once the new one is durable; a crash
   * before that leaves the previous one whole and readable.
   */
  saveCheckpoint(bytes: Uint8Array): Promise<void>;

  /**
   * The last checkpoint saved, undefined when there is none. Its bytes are
   * checked against the SHA-256 digest recorded when it was saved: a
   * mismatch, or a recorded digest that is empty or unreadable, is a
   * BadCheckpoint TesseraError (field `checkpoint.digest`), never wrong weights.
   */
  loadCheckpoint(): Promise<Uint8Array | undefined>;

  /** Replaces the job's status record (config, status, last checkpoint). */
  putStatus(record: JobStatusRecord): Promise<void>;

  /** The last status record put, undefined when there is none. */
  getStatus(): Promise<JobStatusRecord | undefined>;

  /** Appends round-log lines (JSON, no newline), in order, after those already there. */
  appendRounds(lines: readonly string[]): Promise<void>;

  /** The round log's lines, oldest first (none after setAsideRounds until more are appended). */
  readRounds(): Promise<string[]>;

  /**
   * Drops the lines of round `fromRound` and later (and lines that do not
   * parse): after a restart from a checkpoint those rounds are played again,
   * and the log must count each round once. Returns the lines kept.
   */
  trimRounds(fromRound: number): Promise<string[]>;

  /**
   * Starts the round log afresh (a job that starts from round 0 again) while
   * keeping the earlier lines for whoever looks for them. Returns where they
   * were put, undefined when there were none.
   */
  setAsideRounds(now: Date): Promise<string | undefined>;

  /** Ends this store's use; a shared connection stays open for the other jobs (JobStores.close ends it). */
  close(): Promise<void>;
}

/** A job's status as the store keeps it: enough for another coordinator to know what the job is and where it stands. */
export interface JobStatusRecord {
  /** The config the job runs with (the checkpoint's, once it has one). */
  config: JobConfig;
  status: JobStatus;
  /** The last checkpoint saved: the next round to play, the training steps taken, when; null before the first. */
  checkpoint: { round: number; version: number; savedAt: string } | null;
  updatedAt: string;
}

export interface StoreOpenOptions {
  /**
   * Awaited before every write, and before every attempt of a write the
   * store retries through a server's loss (the JetStream store), with what
   * the write does: the lease's fence (fenced-stores.ts), so that a write
   * waits while the lease is unconfirmed and none is made once it is lost.
   * Its rejection fails the write.
   */
  beforeWrite?(what: string): Promise<void>;
}

/** Opens the store of each job of one coordinator, over one connection where there is one. */
export interface JobStores {
  /** `folder` or `nats`, as `--store` names them. */
  readonly kind: 'folder' | 'nats';
  /** The store of job `jobId`, whose output folder is `outputDir` (where the folder store keeps it; the JetStream one keeps nothing there). */
  open(jobId: string, outputDir: string, options?: StoreOpenOptions): Promise<JobStore>;
  /**
   * True when job `jobId` has a store here to read, found without making one
   * (open makes it): JetStream, its checkpoint's object store; the folder
   * store, its output folder. A mistyped `model.initFrom=store:<id>` then
   * leaves no empty buckets behind.
   */
  has(jobId: string, outputDir: string): Promise<boolean>;
  /** Closes what the stores share (the NATS connection). */
  close(): Promise<void>;
}

/** The round a round-log line names; undefined for a line that does not parse (one cut short by a crash). */
export function roundOfLine(line: string): number | undefined {
  try {
    const round = (JSON.parse(line) as { round?: unknown }).round;
    return Number.isInteger(round) ? (round as number) : undefined;
  } catch {
    return undefined;
  }
}
