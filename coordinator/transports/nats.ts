import type { NatsConnection, Subscription } from 'nats';
import { isChunk, Reassembler, splitMessage } from '../../shared/codec/chunking.ts';
import { pack } from '../../shared/codec/packr.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { LIMITS, type CoordinatorMessage } from '../../shared/protocol/messages.ts';
import { subjects } from '../../shared/protocol/subjects.ts';
import type { ChannelHandler, WorkerChannel } from './types.ts';

export interface NatsTransportOptions {
  heartbeatMs: number;
  /**
   * A worker silent this long is taken as gone (NATS has no per-worker
   * connection to watch). Longer than three heartbeats, and than a compute
   * step, since a Node worker cannot send heartbeats while it computes.
   */
  silenceTimeoutMs?: number;
  /** Chunks of a message that stop coming for this long are dropped and the sender is asked again. */
  chunkTimeoutMs?: number;
}

export interface NatsTransport {
  /** Starts serving a job's workers (jobs can be added while the coordinator runs). */
  addJob(jobId: string): void;
  /** Sends one message to every worker of the job: encoded and published once, whatever the number of workers. */
  broadcast(jobId: string, message: CoordinatorMessage): void;
  /** Resolves when everything queued so far has been handed to the client. */
  drained(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Serves the worker protocol over NATS: each worker connection has a subject
 * pair (in/out, see shared/protocol/subjects.ts) and the job a broadcast
 * subject. Messages above the server's max_payload are chunked.
 */
export function attachNatsTransport(nc: NatsConnection, handler: ChannelHandler, options: NatsTransportOptions): NatsTransport {
  const reassembler = new Reassembler(LIMITS.maxTensorBytes + 1024 * 1024);
  const silenceTimeoutMs = options.silenceTimeoutMs ?? Math.max(options.heartbeatMs * 3, 30_000);
  const channels = new Map<string, NatsChannel>();
  // One queue for every publish, so frames leave in the order messages were sent (a broadcast before the assigns that use it).
  let outbox: Promise<void> = Promise.resolve();
  let nextMessageId = 1;
  const maxFrameBytes = () => nc.info?.max_payload ?? 1024 * 1024;

  const publish = (subject: string, message: CoordinatorMessage) => {
    const bytes = pack(message).slice();
    outbox = outbox
      .then(async () => {
        for (const frame of await splitMessage(bytes, maxFrameBytes(), nextMessageId++)) nc.publish(subject, frame);
      })
      .catch(() => {
        /* a closed connection: the worker asks again after it reconnects */
      });
  };

  class NatsChannel implements WorkerChannel {
    readonly transport = 'nats';
    lastHeardAt = Date.now();
    /** Incoming frames of this connection are handled strictly in order (reassembly is async). */
    inbox: Promise<void> = Promise.resolve();

    constructor(
      readonly id: string,
      readonly jobId: string,
      readonly connectionId: string,
    ) {}

    get remote(): string {
      return subjects.toWorker(this.jobId, this.connectionId);
    }

    send(message: CoordinatorMessage): void {
      if (channels.get(this.id) === this) publish(this.remote, message);
    }

    close(reason: string): void {
      drop(this, reason);
    }
  }

  const drop = (channel: NatsChannel, reason: string) => {
    if (channels.get(channel.id) !== channel) return;
    channels.delete(channel.id);
    reassembler.forget(channel.id);
    handler.onClose(channel, reason);
  };

  const subscriptions: Subscription[] = [];
  const subscribe = (jobId: string) =>
    nc.subscribe(subjects.coordinatorInbox(jobId), {
      callback: (error, message) => {
        if (error) return;
        const connectionId = subjects.connectionOf(message.subject);
        const id = `nats-${jobId}-${connectionId}`;
        let channel = channels.get(id);
        if (!channel) {
          channel = new NatsChannel(id, jobId, connectionId);
          channels.set(id, channel);
        }
        channel.lastHeardAt = Date.now();
        const frame = message.data;
        const target = channel;
        target.inbox = target.inbox.then(async () => {
          let bytes: Uint8Array | undefined = frame;
          if (isChunk(frame)) {
            try {
              bytes = await reassembler.add(target.id, frame, Date.now());
            } catch (failure) {
              const wire = failure instanceof TesseraError ? failure.toWire() : { code: ErrorCode.DecodeFailed, message: String(failure) };
              target.send({ type: 'reject', ...wire });
              return;
            }
          }
          if (bytes && channels.get(target.id) === target) handler.onMessage(target, bytes);
        });
      },
    });

  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const channel of channels.values()) {
      if (now - channel.lastHeardAt > silenceTimeoutMs) drop(channel, `no message for ${Math.round((now - channel.lastHeardAt) / 1000)} s`);
    }
    for (const lost of reassembler.expire(now, options.chunkTimeoutMs ?? 30_000)) {
      channels.get(lost.sender)?.send({
        type: 'reject',
        code: ErrorCode.IncompleteMessage,
        message: `only ${lost.received} of ${lost.count} chunks arrived; send the message again`,
        field: 'chunk',
      });
    }
  }, Math.max(250, Math.min(options.heartbeatMs, 5_000)));
  sweeper.unref();

  return {
    addJob(jobId) {
      subscriptions.push(subscribe(jobId));
    },
    broadcast(jobId, message) {
      publish(subjects.broadcast(jobId), message);
    },
    drained: () => outbox,
    async close() {
      clearInterval(sweeper);
      for (const subscription of subscriptions) subscription.unsubscribe();
      await outbox;
      for (const channel of [...channels.values()]) drop(channel, 'coordinator closing');
    },
  };
}
