import type { HeldUpdate, MeanState } from '../../shared/aggregate/streaming-mean.ts';
import type { RoundOutlier } from '../../shared/api/round-log.ts';
import type { ErrorCode } from '../../shared/protocol/errors.ts';

/**
 * The messages between the coordinator and its fold thread
 * (coordinator/job/fold-thread.ts and fold-thread-entry.ts). Both ends are
 * this program; the update bytes the thread decodes are a worker's, and are
 * checked there as the event loop would check them.
 */

/** What the thread's fold of a round is opened on: the round's own fold (round-fold.ts openFold) is opened on the same. */
export interface FoldOpen {
  type: 'open';
  round: number;
  shapes: Record<string, number[]>;
  /** Each tensor's network. */
  networkOf: Record<string, string>;
  /** Worker id -> assigned samples. */
  assigned: [string, number][];
  options: { maxShare: number; clipNorm: number; tau: Record<string, number> };
  /** training.maxGradNorm: the thread refuses above it, as the event loop does. */
  maxGradNorm: number;
}

/**
 * One update's tensors to decode, check and fold: `bytes` moved to the
 * thread. `giveBack`: their buffer is one of the coordinator's copies, to
 * come back with the answer (else a worker's message, which the thread drops).
 */
export interface FoldCheck {
  type: 'check';
  round: number;
  workerId: string;
  codec: string;
  bytes: Uint8Array;
  giveBack: boolean;
}

/** The round closes: the thread answers with what it folded, after every check sent before. */
export interface FoldClose {
  type: 'close';
  round: number;
}

export type FoldRequest = FoldOpen | FoldCheck | FoldClose;

/** `spent`: the check's bytes when it was to give them back, moved back for the coordinator to reuse their buffer. */
export type FoldReply =
  | { type: 'checked'; round: number; workerId: string; spent?: Uint8Array }
  | { type: 'refused'; round: number; workerId: string; code: ErrorCode; message: string; field?: string; spent?: Uint8Array }
  /** Each network's state and held updates (their buffers moved back), and the updates its clip flagged. */
  | { type: 'closed'; round: number; states: Record<string, MeanState>; held: Record<string, HeldUpdate[]>; outliers: RoundOutlier[] }
  /** The thread could not do what it was asked (a bug, not a worker's fault). */
  | { type: 'failed'; round: number; message: string };
