import type { TesseraError } from '../protocol/errors.ts';
import type { CoordinatorMessage } from '../protocol/messages.ts';

/** One worker's connection as the coordinator sees it, whatever carries it (a WebSocket, a NATS subject pair, memory). */
export interface WorkerChannel {
  /** Unique per connection (a reconnecting worker gets a new channel). */
  readonly id: string;
  /** The transport's name, for metrics and the worker table. */
  readonly transport: string;
  /** Where the connection comes from (address, subject). */
  readonly remote: string;
  /** Whom connections are counted by while they wait for hello: the peer's IP address, or the NATS connection. */
  readonly address: string;
  /** The job the carrier binds this connection to (NATS subjects name one), if any: a hello for another job is refused. */
  readonly jobId?: string;
  /**
   * True when the transport broadcasts each new weights version to its
   * workers (NATS): the coordinator then never sends weights to one
   * connection unasked. Otherwise (WebSocket) a new version goes out just
   * before the assignment that needs it.
   */
  readonly broadcastsWeights?: boolean;
  send(message: CoordinatorMessage): void;
  /**
   * Runs `send`, whose messages to this connection leave together, in one
   * write, where the transport can (a WebSocket's TCP socket is corked
   * meanwhile). Without it they go one by one.
   */
  batch?(send: () => void): void;
  /** Closes the connection; the transport reports it through onClose. */
  close(reason: string): void;
  /**
   * The largest message this connection may send from now on. The transport
   * refuses a larger one before buffering it where it can (a WebSocket
   * frame's header declares its length) and reports it through onRefused.
   */
  limitMessages(maxBytes: number): void;
}

/** What a transport calls on the coordinator: the hub implements it. */
export interface ChannelHandler {
  /** A new connection, before any message: the handler sets its limits, or closes it. */
  onOpen(channel: WorkerChannel): void;
  onMessage(channel: WorkerChannel, bytes: Uint8Array): void;
  /** The transport refused input itself (a message over the connection's limit); the connection may close after. */
  onRefused(channel: WorkerChannel, error: TesseraError): void;
  onClose(channel: WorkerChannel, reason: string): void;
}

/** The coordinator's end of a transport: it accepts workers' connections and hands them to one handler. */
export interface CoordinatorTransport {
  /** The name its channels carry (`WorkerChannel.transport`). */
  readonly name: string;
  /** Starts accepting connections; every one goes to `handler`. Called once. */
  start(handler: ChannelHandler): Promise<void>;
  /**
   * Serves a job's workers (jobs are added while the coordinator runs): a
   * transport whose addresses name the job (NATS subjects) starts listening
   * on them; one where the hello names it (WebSockets) has nothing to do.
   */
  addJob(jobId: string): void;
  /**
   * Sends one message to every worker of the job at once, encoded once.
   * False when the transport has no such channel (over WebSockets each
   * worker fetches the weights by hash instead).
   */
  broadcast(jobId: string, message: CoordinatorMessage): boolean;
  /** Stops accepting, ends every connection (each reported through onClose) and releases what it holds. */
  close(): Promise<void>;
}
