import type { WorkerKind } from '../protocol/messages.ts';

/** Who a worker is: its id, its job, and what its hello said of it. */
export interface WorkerIdentity {
  id: string;
  jobId: string;
  kind: WorkerKind;
  /** The tfjs backend it trains on (webgpu, wasm, tensorflow, cpu). */
  backend: string;
  device: string;
  name: string;
}

/** A worker's row, as the API (the Worker schema of /api/openapi.json), the `workers` event and the dashboard's table show it. */
export interface WorkerRow extends WorkerIdentity {
  connected: boolean;
  /** The transport of its live connection (websocket, nats); null while it is away. */
  transport: string | null;
  /** The speed it reports (samples per reported compute second, smoothed): shown, never used to plan. */
  samplesPerSecond: number;
  samplesContributed: number;
  updatesAccepted: number;
  updatesRejected: number;
  /** Weights sent to it on request; NATS workers get each version by broadcast instead. */
  weightFetches: number;
  /** 0 to 1; below training.verification.quarantineBelow the worker is quarantined (coordinator/trust.ts). */
  trust: number;
  /** Its updates are acknowledged but never aggregated; it only gets copies of others' assignments. */
  quarantined: boolean;
  banned: boolean;
  /** ISO 8601, on the coordinator's clock. */
  lastSeenAt: string;
}

/** What releasing or banning a worker answers: its trust now, and its row while it is connected. */
export interface WorkerTrustAnswer {
  id: string;
  trust: number;
  quarantined: boolean;
  banned: boolean;
  worker: WorkerRow | null;
}
