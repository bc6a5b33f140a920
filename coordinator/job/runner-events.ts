import type { JobStatus } from '../../shared/api/jobs.ts';
import type { TesseraError } from '../../shared/protocol/errors.ts';
import type { WorkerSession } from '../workers.ts';
import type { PublishedWeights } from './published-weights.ts';
import type { OpenRound, RoundSummary } from './round.ts';

/** What a JobRunner tells its listeners (the hub, the metrics, the event stream, the transports). */
export interface RunnerEvents {
  round: [summary: RoundSummary, workers: WorkerSession[]];
  waiting: [reason: string];
  /** The job paused because its training diverged (runner.diverged); the message says how to go on. */
  diverged: [message: string];
  checkpoint: [path: string, round: number, durationMs: number, bytes: number];
  status: [status: JobStatus];
  samples: [path: string, round: number];
  exported: [dir: string, round: number];
  finished: [round: number];
  rejected: [workerId: string, error: TesseraError];
  /** Weights of `bytes` tensor bytes went to a worker just before its assignment (over a transport that does not broadcast). */
  weightsPushed: [bytes: number, transport: string];
  /** A new weights version is about to be assigned (transports that broadcast send it now). */
  published: [weights: PublishedWeights];
  outputError: [error: Error];
  /** A round was opened; its assignments leave right after the listeners return (aggregators are told of the round now). */
  opening: [round: OpenRound];
  /** An aggregator's partial of the round was added: `updates` folded updates of `bytes` bytes in one message. */
  partial: [aggregatorId: string, round: number, updates: number, bytes: number];
}
