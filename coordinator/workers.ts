import type { WorkerKind } from '../shared/protocol/messages.ts';
import type { WorkerChannel } from './transports/types.ts';
import type { TrustState } from './trust.ts';

/** What the coordinator knows of one worker; kept across reconnects by worker id. */
export interface WorkerSession {
  id: string;
  jobId: string;
  kind: WorkerKind;
  backend: string;
  device: string;
  name: string;
  /** The live connection, or undefined while the worker is away. */
  channel: WorkerChannel | undefined;
  joinedAt: number;
  lastSeenAt: number;
  /** Smoothed compute speed from the worker's own timings. */
  samplesPerSecond: number;
  samplesContributed: number;
  updatesAccepted: number;
  updatesRejected: number;
  bytesReceived: number;
  /** Weights sent to this worker on request; NATS workers get each version by broadcast instead. */
  weightFetches: number;
  /** Its trust, as the job's verifier last set it (absent until it joins a job's runner). */
  trust?: TrustState;
}

/** Exponential moving average weight of the newest speed measurement. */
const SPEED_SMOOTHING = 0.3;

/** Folds a new measurement into a worker's speed estimate. */
export function recordSpeed(session: WorkerSession, samples: number, computeMs: number): void {
  const measured = samples / Math.max(computeMs, 1) * 1000;
  session.samplesPerSecond = session.samplesPerSecond > 0 ? session.samplesPerSecond + SPEED_SMOOTHING * (measured - session.samplesPerSecond) : measured;
}

/** The worker table row, as the API and the dashboard show it. */
export function describeWorker(session: WorkerSession) {
  return {
    id: session.id,
    jobId: session.jobId,
    kind: session.kind,
    backend: session.backend,
    device: session.device,
    name: session.name,
    connected: session.channel !== undefined,
    transport: session.channel?.transport ?? null,
    samplesPerSecond: session.samplesPerSecond,
    samplesContributed: session.samplesContributed,
    updatesAccepted: session.updatesAccepted,
    updatesRejected: session.updatesRejected,
    weightFetches: session.weightFetches,
    /** 0 to 1; below training.verification.quarantineBelow the worker is quarantined (coordinator/trust.ts). */
    trust: session.trust?.score ?? 1,
    /** Its updates are acknowledged but never aggregated; it only gets copies of others' assignments. */
    quarantined: session.trust?.quarantined ?? false,
    banned: session.trust?.banned ?? false,
    lastSeenAt: new Date(session.lastSeenAt).toISOString(),
  };
}
