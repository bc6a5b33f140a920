import type { JobDescription, JobStatus } from './jobs.ts';
import type { QualityRow, RoundRow } from './round-log.ts';
import type { WorkerRow } from './workers.ts';

/*
 * GET /api/jobs/:id/events, a stream of Server-Sent Events: each event's name
 * and its JSON data. The coordinator pushes them (coordinator/api/events.ts),
 * the dashboard follows them (dashboard/dashboard.ts): both type against this
 * map, so an event the one sends is an event the other reads.
 */

/** The first event, sent again on every reconnect: it replaces everything a reader shows. */
export interface JobSnapshot {
  job: JobDescription;
  /** The latest closed rounds, oldest first. */
  rounds: RoundRow[];
  /** The latest scorings, oldest first. */
  quality: QualityRow[];
}

/** The job's status changed. */
export interface StatusEvent {
  status: JobStatus;
  round: number;
  version: number;
  /** Set when the job paused because its training diverged: what happened and how to go on. */
  diverged?: string;
}

/** A sample grid was written after `round`. */
export interface SamplesEvent {
  round: number;
  /** Its address under /api/jobs/:id/samples (the latest grid, named by round so a browser fetches it anew). */
  url: string;
}

/** Every event of the stream, by name, with its data. */
export interface JobEvents {
  snapshot: JobSnapshot;
  /** A round closed. */
  round: RoundRow;
  /** Every worker of the job, after a round or when one joins or leaves. */
  workers: WorkerRow[];
  status: StatusEvent;
  samples: SamplesEvent;
  /** A background scoring finished. */
  quality: QualityRow;
  /** Every 15 s, so proxies keep an idle stream open. */
  keepalive: Record<string, never>;
}

export type JobEventName = keyof JobEvents;
