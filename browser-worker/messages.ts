import type { NamedArrays } from '../shared/codec/types.ts';
import type { Batch } from '../shared/models/types.ts';
import type { BackendFigure } from '../shared/tfjs/backends.ts';

/** What the page tells its training Web Worker. */
export type PageToWorker =
  /** `token`: a join token from the page's link (or the shared worker token). */
  | { type: 'start'; url: string; origin: string; jobId?: string; token?: string; backend?: string; name: string; dutyCycle: number }
  | { type: 'pause' }
  | { type: 'resume' }
  /** Join although the speed check said this device is too slow (the person asked for it). */
  | { type: 'joinAnyway' }
  | { type: 'dutyCycle'; value: number }
  /** Draw samples locally after accepted updates: only while the coordinator has written no sample grid yet. */
  | { type: 'localSamples'; enabled: boolean }
  | { type: 'stop' }
  /** Test hook: gradients of the job's model on given weights, batch and noise, on this tab's backend. */
  | { type: 'gradients'; requestId: number; modelId: string; modelConfig: Record<string, unknown>; weights: NamedArrays; batch: Batch; noise: NamedArrays };

/**
 * starting → calibrating (timing each backend, then the job's model) →
 * connecting → training; or spectating when the device cannot finish a share
 * before the deadline (or its updates kept arriving late).
 */
export type TabState = 'starting' | 'calibrating' | 'connecting' | 'training' | 'spectating' | 'paused' | 'stopped' | 'refused';

/** What a training tab is doing within a round. */
export type TabActivity = 'none' | 'computing' | 'sent' | 'waiting' | 'late' | 'refused' | 'idle';

/** The speed check on the job's own model, against the job's deadline. */
export interface SpeedCheck {
  /** This device's speed at the share a newcomer gets. */
  samplesPerSecond: number;
  firstShare: number;
  /** Transfers of one round, measured: fetching the weights, encoding the update. */
  overheadMs: number;
  predictedMs: number;
  deadlineMs: number;
  join: boolean;
  reason: string;
}

export interface TabStatus {
  state: TabState;
  activity: TabActivity;
  backend: string;
  device: string;
  /** Calibration: each backend timed, fastest first. */
  figures: BackendFigure[];
  /** Backends passed over, and why (a software GPU, not available). */
  skipped: { name: string; reason: string }[];
  speedCheck: SpeedCheck | undefined;
  jobId: string;
  workerId: string;
  /** This tab's compute speed over its last updates (after the load limit). */
  samplesPerSecond: number;
  /** Samples in the share being computed, or in the last one. */
  share: number;
  updatesAccepted: number;
  updatesRejected: number;
  /** Rejected because they arrived after their round had closed. */
  updatesLate: number;
  samplesContributed: number;
  /** Compute time of the accepted updates: what this tab has given. */
  computeMsContributed: number;
  lastRound: number;
  losses: Record<string, number>;
  /** The last thing worth telling the person, in words. */
  message: string;
}

/** What the training Web Worker tells its page. */
export type WorkerToPage =
  | { type: 'status'; status: TabStatus }
  | { type: 'samples'; width: number; height: number; pixels: Uint8ClampedArray }
  | { type: 'gradients'; requestId: number; grads?: NamedArrays; losses?: Record<string, number>; error?: string };
