import type { CoordinatorMessage } from '../../shared/protocol/messages.ts';

/** One worker's connection, whatever carries it (a WebSocket, a NATS subject pair). */
export interface WorkerChannel {
  /** Unique per connection (a reconnecting worker gets a new channel). */
  readonly id: string;
  /** The transport's name, for metrics and the worker table. */
  readonly transport: string;
  /** Where the connection comes from (address, subject). */
  readonly remote: string;
  send(message: CoordinatorMessage): void;
  /** Closes the connection; the transport reports it through onClose. */
  close(reason: string): void;
}

/** What a transport calls on the coordinator: the hub implements it. */
export interface ChannelHandler {
  onMessage(channel: WorkerChannel, bytes: Uint8Array): void;
  onClose(channel: WorkerChannel, reason: string): void;
}
