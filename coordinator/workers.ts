import { creditedComputeMs, type ShareInput } from '../shared/schedule/schedule.ts';
import type { WorkerIdentity, WorkerRow } from '../shared/api/workers.ts';
import type { WorkerChannel } from '../shared/transport/coordinator.ts';
import type { TrustState } from './trust.ts';

/** What the coordinator knows of one worker; kept across reconnects by worker id. */
export interface WorkerSession extends WorkerIdentity {
  /** The live connection, or undefined while the worker is away. */
  channel: WorkerChannel | undefined;
  joinedAt: number;
  lastSeenAt: number;
  /**
   * The speed the worker reports: its hello's claim, then samples per reported compute second, smoothed. Shown (the
   * metrics' utilization), never used to plan: planning reads `speed`, what the coordinator measured.
   */
  samplesPerSecond: number;
  /** What the coordinator measured of this worker and planned for it; absent until it is first planned or measured. */
  speed?: SpeedRecord;
  samplesContributed: number;
  updatesAccepted: number;
  updatesRejected: number;
  bytesReceived: number;
  /** Weights sent to this worker on request; NATS workers get each version by broadcast instead. */
  weightFetches: number;
  /**
   * The hash of the weights last sent on its current connection, pushed
   * before an assignment or fetched: an assignment on other weights has
   * them sent first (ConnectedWorkers), so the worker need not ask.
   */
  weightsSent?: string;
  /** Its trust, as the job's verifier last set it (absent until it joins a job's runner). */
  trust?: TrustState;
}

/** What the coordinator measured of a worker's speed and planned for it. */
export interface SpeedRecord {
  /** Samples per second the coordinator measured (see recordSpeed), smoothed; 0 before the first measurement. */
  measured: number;
  /** Measurements folded in so far; the first replaces, later ones are smoothed. */
  rounds: number;
  /** The batch of the last round the worker was planned in: the next one grows from there by a bounded step. */
  lastBatch?: number;
  /** Its latest assignments, oldest first: batch and when it was sent (coordinator clock), to time a late update. */
  assigned: { round: number; batch: number; at: number }[];
}

/**
 * Assignments kept per worker for timing late updates. A slow newcomer is handed a round at every deadline learned
 * from faster workers while it computes its first: its first update may come a dozen rounds later, and without
 * that measurement it would be handed the same too-large batch for good.
 */
const ASSIGNMENTS_KEPT = 32;

/** Exponential moving average weight of the newest speed measurement. */
const SPEED_SMOOTHING = 0.3;
/**
 * The transfer a worker reports (its weights and data fetch) is subtracted from the coordinator's finish time, but
 * believed only up to this share of it. Not a free claim: a worker that says all its time was transfer looks at most
 * 5/4 as fast as it is, and the share cap bounds what that buys. Honest workers lose little: on loopback or a LAN
 * the fetch is a few percent of a round, and a worker on a link slow enough to pass a fifth is timed a little slow,
 * so it gets a smaller batch and finishes early rather than late. Why not estimate transfer from bytes instead: the
 * coordinator does not see how fast bytes move on a worker's link, and any estimate that grows with how late a worker
 * answers would reward a worker for waiting.
 */
const MAX_TRANSFER_SHARE = 0.2;

function speedRecord(session: WorkerSession): SpeedRecord {
  session.speed ??= { measured: 0, rounds: 0, assigned: [] };
  return session.speed;
}

/** The first value replaces, later ones move the estimate a step towards themselves. */
const smoothed = (previous: number, value: number, first: boolean) => (first ? value : previous + SPEED_SMOOTHING * (value - previous));

/**
 * Folds one finished assignment into a worker's speed: its samples over the coordinator's finish time (assignment
 * sent to update received) less the transfer it reported, bounded. Its reported compute time only feeds the speed
 * it is shown with.
 */
export function recordSpeed(session: WorkerSession, samples: number, finishMs: number, timing: { computeMs: number; fetchMs: number }): void {
  const record = speedRecord(session);
  const first = record.rounds === 0;
  record.measured = smoothed(record.measured, (samples / creditedComputeMs(finishMs, timing.fetchMs, MAX_TRANSFER_SHARE)) * 1000, first);
  record.rounds += 1;
  // The hello's claim is replaced by the first report, not averaged with it.
  session.samplesPerSecond = smoothed(session.samplesPerSecond, (samples / Math.max(timing.computeMs, 1)) * 1000, first);
}

/** The worker as the batch split sees it: measured speed (0 before any), the hello's claim, its last batch. */
export function shareInput(session: WorkerSession): ShareInput {
  const speed = session.speed?.measured ?? 0;
  return { speed, hint: speed > 0 ? undefined : session.samplesPerSecond, previous: session.speed?.lastBatch };
}

/** Notes the batch a round assigns the worker and when, for the next round's bounded step and late updates' timing. */
export function noteAssignment(session: WorkerSession, round: number, batch: number, now: number): void {
  const record = speedRecord(session);
  record.lastBatch = batch;
  record.assigned.push({ round, batch, at: now });
  if (record.assigned.length > ASSIGNMENTS_KEPT) record.assigned.shift();
}

/**
 * The measurement an update of `round` gives when it arrives after its round stopped waiting: the batch the
 * coordinator assigned (not the samples the update claims) and assignment to arrival. Once per assignment;
 * undefined when the worker has no recent assignment for `round`.
 */
export function lateMeasurement(session: WorkerSession, round: number, now: number): { samples: number; finishMs: number } | undefined {
  const assigned = session.speed?.assigned;
  const index = assigned?.findIndex((entry) => entry.round === round) ?? -1;
  if (index < 0) return undefined;
  const [entry] = assigned!.splice(index, 1);
  return { samples: entry.batch, finishMs: now - entry.at };
}

/** The worker table row, as the API and the dashboard show it. */
export function describeWorker(session: WorkerSession): WorkerRow {
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
    trust: session.trust?.score ?? 1,
    quarantined: session.trust?.quarantined ?? false,
    banned: session.trust?.banned ?? false,
    lastSeenAt: new Date(session.lastSeenAt).toISOString(),
  };
}
