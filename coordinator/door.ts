import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { TokenBucket, type DoorLimits } from './limits.ts';
import type { WorkerChannel } from '../shared/transport/coordinator.ts';

/** What the guard knows of one connection. */
interface Connection {
  address: string;
  welcomed: boolean;
  /** The largest message the connection may send now: tiny until hello, then its job's update size. */
  messageLimit: number;
  messages: TokenBucket;
  bytes: TokenBucket;
  /** Refusals for rate it may still collect before it is closed. */
  strikes: TokenBucket;
  helloTimer: ReturnType<typeof setTimeout> | undefined;
}

/** A message the guard refuses before it is decoded; `close` when the connection has used up its strikes. */
export interface Refusal {
  error: TesseraError;
  close: boolean;
}

/**
 * Per connection, before anything is decoded: how large a message may be at
 * its stage, how fast it may send, and how long it may take to say hello.
 * Counts the connections waiting for hello per address and in all. Policy
 * only: the hub decides what to answer and closes.
 */
export class ConnectionGuard {
  private readonly connections = new Map<WorkerChannel, Connection>();
  private readonly waitingByAddress = new Map<string, number>();
  private waiting = 0;

  constructor(
    private readonly limits: DoorLimits,
    /** Called once when a connection's hello deadline passes without a hello. */
    private readonly onHelloDeadline: (channel: WorkerChannel) => void,
  ) {}

  /** Whether the connection was opened (and not closed since). */
  knows(channel: WorkerChannel): boolean {
    return this.connections.has(channel);
  }

  /**
   * Takes a new connection in at the pre-hello limits and starts its hello
   * deadline; refuses it (the caller closes it) when too many connections wait
   * for their hello from its address or in all.
   */
  open(channel: WorkerChannel, now: number): TesseraError | undefined {
    if (this.connections.has(channel)) return undefined;
    const { limits } = this;
    const fromAddress = this.waitingByAddress.get(channel.address) ?? 0;
    if (fromAddress >= limits.maxPreHelloPerAddress) {
      return new TesseraError(
        ErrorCode.RateLimited,
        `${fromAddress} connections from this address are waiting to say hello already; at most ${limits.maxPreHelloPerAddress}`,
        { field: 'connection' },
      );
    }
    if (this.waiting >= limits.maxPreHelloTotal) {
      return new TesseraError(ErrorCode.RateLimited, `${this.waiting} connections are waiting to say hello already; at most ${limits.maxPreHelloTotal}`, {
        field: 'connection',
      });
    }
    const connection: Connection = {
      address: channel.address,
      welcomed: false,
      messageLimit: limits.preHelloFrameBytes,
      messages: new TokenBucket(limits.messageBurst, limits.messagesPerSecond, now),
      bytes: new TokenBucket(2 * limits.preHelloFrameBytes, limits.bytesPerSecond, now),
      strikes: new TokenBucket(limits.rateStrikes, 1, now),
      helloTimer: setTimeout(() => {
        connection.helloTimer = undefined;
        if (this.connections.get(channel) === connection && !connection.welcomed) this.onHelloDeadline(channel);
      }, limits.helloDeadlineMs),
    };
    // The deadline must not keep a closing process alive.
    connection.helloTimer!.unref?.();
    this.connections.set(channel, connection);
    this.waitingByAddress.set(channel.address, fromAddress + 1);
    this.waiting += 1;
    channel.limitMessages(limits.preHelloFrameBytes);
    return undefined;
  }

  /** Hello accepted: the connection stops counting as waiting and may send messages up to `maxBytes` (its job's update size). */
  welcome(channel: WorkerChannel, maxBytes: number, now: number): void {
    const connection = this.connections.get(channel);
    if (!connection) return;
    // The bucket holds a second of the byte rate, and two whole updates at least (a resend after a reconnect may
    // follow an update back to back). Not two updates only: the bucket refills by the clock's millisecond, and a
    // socket read can hand over several large frames within one, which a high configured rate must admit.
    const burst = Math.max(2 * maxBytes, this.limits.bytesPerSecond);
    if (!connection.welcomed) {
      connection.welcomed = true;
      clearTimeout(connection.helloTimer);
      connection.helloTimer = undefined;
      this.stopWaiting(connection.address);
      connection.bytes = new TokenBucket(burst, this.limits.bytesPerSecond, now);
    } else {
      // Saying hello again refills nothing.
      connection.bytes.resize(burst);
    }
    connection.messageLimit = maxBytes;
    channel.limitMessages(maxBytes);
  }

  /** The largest message the connection may send now. */
  messageLimit(channel: WorkerChannel): number {
    return this.connections.get(channel)?.messageLimit ?? this.limits.preHelloFrameBytes;
  }

  /** Checks one message of `byteLength` bytes before it is decoded: its size at the connection's stage, then its rates. */
  check(channel: WorkerChannel, byteLength: number, now: number): Refusal | undefined {
    const connection = this.connections.get(channel);
    if (!connection) return { error: new TesseraError(ErrorCode.NotRegistered, 'this connection is closed', { field: 'connection' }), close: true };
    if (byteLength > connection.messageLimit) {
      const stage = connection.welcomed ? 'a message of this job' : 'a message before hello';
      return {
        error: new TesseraError(ErrorCode.TooLarge, `${byteLength} bytes, above ${connection.messageLimit} for ${stage}`, { field: 'message' }),
        close: false,
      };
    }
    if (connection.messages.take(1, now) && connection.bytes.take(byteLength, now)) return undefined;
    const error = new TesseraError(
      ErrorCode.RateLimited,
      `above ${this.limits.messagesPerSecond} messages or ${this.limits.bytesPerSecond} bytes per second; slow down`,
      { field: 'message' },
    );
    return { error, close: !connection.strikes.take(1, now) };
  }

  /** Forgets a connection that closed. */
  closed(channel: WorkerChannel): void {
    const connection = this.connections.get(channel);
    if (!connection) return;
    this.connections.delete(channel);
    clearTimeout(connection.helloTimer);
    if (!connection.welcomed) this.stopWaiting(connection.address);
  }

  /** Connections waiting for their hello now. */
  get waitingForHello(): number {
    return this.waiting;
  }

  /** Stops every timer (the coordinator is closing). */
  dispose(): void {
    for (const connection of this.connections.values()) clearTimeout(connection.helloTimer);
    this.connections.clear();
    this.waitingByAddress.clear();
    this.waiting = 0;
  }

  private stopWaiting(address: string): void {
    this.waiting -= 1;
    const left = (this.waitingByAddress.get(address) ?? 1) - 1;
    if (left > 0) this.waitingByAddress.set(address, left);
    else this.waitingByAddress.delete(address);
  }
}
