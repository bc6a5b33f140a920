import type { JobConfig } from './job-config.ts';
import type { QualityRow, RoundRow } from './round-log.ts';
import type { WorkerRow } from './workers.ts';

/**
 * waiting: too few workers for a round; running: rounds go on; paused: the
 * open round finishes, no new one starts; finished: the round budget is spent;
 * stopped: ended by an admin, final outputs written.
 */
export type JobStatus = 'waiting' | 'running' | 'paused' | 'finished' | 'stopped';

/** The dataset's images as the model is built for them. */
export interface JobData {
  /** [height, width, channels]. */
  imageShape: [number, number, number];
  /** 0 for unlabelled images. */
  classes: number;
  /** A folder dataset's classes are its subfolders; empty where the dataset names none. */
  classNames: readonly string[];
}

/** How many scorings were done, skipped and failed since this coordinator started (coordinator/quality/monitor.ts). */
export interface QualityCounts {
  scored: number;
  /** Not started because the previous one still ran (they never queue). */
  skipped: number;
  failed: number;
}

/** Sample quality scored in the background every output.evalEvery training steps. */
export interface JobQuality extends QualityCounts {
  /** The most recent scoring. */
  latest: QualityRow | null;
  /** A scoring runs now. */
  running: boolean;
}

/** A job as the API shows it (the Job schema of /api/openapi.json): GET /api/jobs/:id, the job actions, the `snapshot` event. */
export interface JobDescription {
  id: string;
  status: JobStatus;
  /** The next round (rounds count from 0, as the wire and the progress line do). */
  round: number;
  /** Training steps applied. */
  version: number;
  samplesSeen: number;
  config: JobConfig;
  data: JobData;
  workers: WorkerRow[];
  lastRound: RoundRow | null;
  quality: JobQuality;
  /** Why the job paused itself when its training diverged (the round, and how to go on); null otherwise. */
  diverged: { round: number; message: string } | null;
}

/** GET /api/jobs. */
export interface JobList {
  jobs: JobDescription[];
}

/** GET /api/jobs/:id/rounds: the latest closed rounds, oldest first. */
export interface RoundList {
  rounds: RoundRow[];
}

/** GET /api/jobs/:id/quality: the latest scorings, oldest first. */
export interface QualityList {
  quality: QualityRow[];
}

/** GET /api/jobs/:id/samples: the sample grids written so far. */
export interface SampleList {
  samples: { round: number; url: string }[];
}
