import type { TesseraError } from '../protocol/errors.ts';

/**
 * Why a worker's connection ended, as what the worker should do next rather
 * than a carrier's close code: connect again (a lost link, a coordinator
 * restarting, the worker's own close), or stop (the carrier refused its
 * credentials, and would again).
 */
export type TransportClosed = { kind: 'retryable'; reason: string } | { kind: 'fatal'; error: TesseraError };

/** What a worker transport tells its client. Every call comes on a later turn than the one that caused it. */
export interface WorkerTransportEvents {
  /**
   * The connection can carry messages. May come again without a close in
   * between, when the carrier reconnected underneath (NATS) and messages may
   * have been lost: the client says hello again.
   */
  opened(): void;
  /** One whole message from the coordinator, in the order they were sent (chunked ones put back together). */
  frame(bytes: Uint8Array): void;
  /** The connection ended, once, for whatever reason (close() included); nothing follows. */
  closed(reason: TransportClosed): void;
}

/** A worker's end of one connection to the coordinator, whatever carries it (a WebSocket, NATS, memory). */
export interface WorkerTransport {
  /** Starts connecting; called once. */
  connect(events: WorkerTransportEvents): void;
  /** Sends one whole message (the transport chunks it if its carrier must); dropped while the connection is not open. */
  send(bytes: Uint8Array): void;
  /** Ends the connection after what was sent before it; `closed` follows. */
  close(reason: string): void;
}

/** What a worker transport is opened for: the client's own options. */
export interface TransportTarget {
  /** The job the worker joins; a transport whose addresses name the job (NATS) needs it. */
  jobId?: string;
}

/** Opens a new connection: the client calls it at start and again at every reconnect. */
export type WorkerTransportFactory = (target: TransportTarget) => WorkerTransport;
