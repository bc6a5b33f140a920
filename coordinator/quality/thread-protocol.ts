import type { QualityReport } from '../../shared/eval/report.ts';

/**
 * The messages between the coordinator and its scoring thread
 * (coordinator/quality/scoring-thread.ts and thread-entry.ts). Both ends are
 * this program: the thread trusts what it is sent, the coordinator checks
 * only that an answer names the request it is waiting for.
 */

/** Score `count` samples of a model at these weights against a dataset's held-out split. */
export interface ScoreRequest {
  type: 'score';
  /** Names the answer. */
  id: number;
  model: { id: string; config: Record<string, unknown> };
  /** The job's held-out split: the evaluator scores against exactly the digits the job never trains on. */
  dataset: { id: string; heldOutFraction: number; splitSeed: number };
  /** Fresh copies, transferred (their buffers move to the thread). */
  weights: Record<string, Float32Array>;
  count: number;
  /** The samples' noise: the same every time, so successive scores differ by the model only. */
  seed: number;
}

export type ScoreReply = { type: 'scored'; id: number; report: QualityReport } | { type: 'failed'; id: number; message: string };
