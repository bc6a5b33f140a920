import type { NamedArrays } from '../shared/codec/types.ts';
import type { Batch } from '../shared/models/types.ts';

/** What the page tells its training Web Worker. */
export type PageToWorker =
  /** `token`: a join token from the page's link (or the shared worker token). */
  | { type: 'start'; url: string; origin: string; jobId?: string; token?: string; backend?: string; name: string; dutyCycle: number }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'dutyCycle'; value: number }
  | { type: 'stop' }
  /** Test hook: gradients of the job's model on given weights, batch and noise, on this tab's backend. */
  | { type: 'gradients'; requestId: number; modelId: string; modelConfig: Record<string, unknown>; weights: NamedArrays; batch: Batch; noise: NamedArrays };

export interface TabStatus {
  state: 'starting' | 'connecting' | 'training' | 'paused' | 'stopped' | 'refused';
  backend: string;
  device: string;
  jobId: string;
  workerId: string;
  /** This tab's compute speed over its last updates (after the load limit). */
  samplesPerSecond: number;
  updatesAccepted: number;
  updatesRejected: number;
  samplesContributed: number;
  lastRound: number;
  losses: Record<string, number>;
  message: string;
}

/** What the training Web Worker tells its page. */
export type WorkerToPage =
  | { type: 'status'; status: TabStatus }
  | { type: 'samples'; width: number; height: number; pixels: Uint8ClampedArray }
  | { type: 'gradients'; requestId: number; grads?: NamedArrays; losses?: Record<string, number>; error?: string };
