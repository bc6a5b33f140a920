import type { NatsConnection, Subscription } from 'nats';
import { isChunk, Reassembler, splitMessage } from '../../shared/codec/chunking.ts';
import { packMessage } from '../../shared/codec/packr.ts';
import { ErrorCode, TesseraError, isTesseraError } from '../../shared/protocol/errors.ts';
import { LIMITS, type CoordinatorMessage } from '../../shared/protocol/messages.ts';
import { subjects } from '../../shared/protocol/subjects.ts';
import type { ChannelHandler, CoordinatorTransport, WorkerChannel } from '../../shared/transport/coordinator.ts';
import { connectNats, type NatsSettings } from '../../runtime/node/nats.ts';

export interface NatsTransportOptions {
  /** The cluster to connect to, and as whom. */
  settings: NatsSettings;
  heartbeatMs: number;
  /**
   * A worker silent this long is taken as gone (NATS has no per-worker
   * connection to watch). Longer than three heartbeats, and than a compute
   * step, since a Node worker cannot send heartbeats while it computes.
   */
  silenceTimeoutMs?: number;
  /** Chunks of a message that stop coming for this long are dropped and the sender is asked again. */
  chunkTimeoutMs?: number;
  /**
   * Declared bytes of all chunked messages being put together at once, over
   * every worker (default 512 MiB: a hundred updates of the default models).
   */
  maxReassemblyBytes?: number;
  /** Told of NATS disconnects and reconnects. */
  onStatus?(status: string): void;
}

/** The coordinator's side of aggregators on this transport's connection, for one job. */
export interface AggregationPort {
  subscribe(subject: string, callback: (subject: string, data: Uint8Array) => void): void;
  /** Publishes after everything sent before it, chunked above max_payload. */
  publish(subject: string, bytes: Uint8Array): void;
  /** In the job's inbox queue group (no aggregator runs) or out of it (aggregators take the workers' frames). */
  joinInbox(joined: boolean): void;
  maxFrameBytes(): number;
}

/** Chunked messages one worker may have incomplete at once: its update, and its resend after a reject. */
const MAX_PENDING_PER_WORKER = 2;

/**
 * Serves the worker protocol over NATS: each worker connection has a subject
 * pair (in/out, see shared/protocol/subjects.ts) and the job a broadcast
 * subject, on which each weights version is published once whatever the
 * number of workers. Messages above the server's max_payload are chunked.
 * The transport holds its own NATS connection, which reconnects for as long
 * as it runs.
 */
export class NatsTransport implements CoordinatorTransport {
  readonly name = 'nats';
  private connection: NatsConnection | undefined;
  private served: ReturnType<typeof serveOnConnection> | undefined;
  private readonly jobs = new Set<string>();

  constructor(private readonly options: NatsTransportOptions) {}

  async start(handler: ChannelHandler): Promise<void> {
    if (this.connection) throw new Error('the NATS transport was started already');
    const { settings, onStatus } = this.options;
    const connection = await connectNats({ ...settings, name: settings.name ?? 'tessera-coordinator' });
    this.connection = connection;
    void (async () => {
      for await (const status of connection.status()) {
        if (status.type === 'disconnect' || status.type === 'reconnect') onStatus?.(`NATS ${status.type}ed (${status.data})`);
      }
    })();
    this.served = serveOnConnection(connection, handler, this.options);
    for (const jobId of this.jobs) this.served.addJob(jobId);
  }

  addJob(jobId: string): void {
    if (this.jobs.has(jobId)) return;
    this.jobs.add(jobId);
    this.served?.addJob(jobId);
  }

  /**
   * What the job's aggregator link (coordinator/aggregation/) uses of this
   * transport: its connection's subscriptions, its ordered outbox (a plan
   * published before the round's assignments reaches aggregators first), and
   * the coordinator's place in the workers' queue group. Undefined before start.
   */
  aggregationPort(jobId: string): AggregationPort | undefined {
    return this.served?.port(jobId);
  }

  broadcast(jobId: string, message: CoordinatorMessage): boolean {
    this.served?.broadcast(jobId, message);
    return true;
  }

  async close(): Promise<void> {
    await this.served?.close();
    this.served = undefined;
    await this.connection?.drain().catch(() => undefined);
  }
}

/** The transport on a connected NATS client: the subscriptions, the channels, and the sweeper of silent ones. */
function serveOnConnection(nc: NatsConnection, handler: ChannelHandler, options: NatsTransportOptions) {
  // Each channel's own limit is passed per chunk; this is only the ceiling.
  const reassembler = new Reassembler(LIMITS.maxTensorBytes + 1024 * 1024, {
    maxTotalBytes: options.maxReassemblyBytes ?? 512 * 1024 * 1024,
    maxPendingPerSender: MAX_PENDING_PER_WORKER,
  });
  const silenceTimeoutMs = options.silenceTimeoutMs ?? Math.max(options.heartbeatMs * 3, 30_000);
  const channels = new Map<string, NatsChannel>();
  // One queue for every publish, so frames leave in the order messages were sent (a broadcast before the assigns that use it).
  let outbox: Promise<void> = Promise.resolve();
  let nextMessageId = 1;
  const maxFrameBytes = () => nc.info?.max_payload ?? 1024 * 1024;

  const publish = (subject: string, message: CoordinatorMessage | Uint8Array) => {
    const bytes = message instanceof Uint8Array ? message : packMessage(message, true);
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
    readonly broadcastsWeights = true;
    lastHeardAt = Date.now();
    /** The largest message the hub lets this connection send now; nothing until it is opened. */
    messageLimit = 0;
    /** Incoming frames of this connection are handled strictly in order (reassembly is async). */
    inbox: Promise<void> = Promise.resolve();
    /** Bytes of frames waiting in the inbox: bounded, so a flood of frames is dropped rather than queued. */
    inboxBytes = 0;

    constructor(
      readonly id: string,
      readonly jobId: string,
      readonly connectionId: string,
    ) {}

    get remote(): string {
      return subjects.toWorker(this.jobId, this.connectionId);
    }

    /** NATS shows no peer address: each connection subject counts as its own. */
    get address(): string {
      return this.remote;
    }

    /** Frames are at most the server's max_payload already; this bounds what chunks may add up to. */
    limitMessages(maxBytes: number): void {
      this.messageLimit = maxBytes;
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
  /** Each job's subscription to its workers' inbox, while the coordinator is in the queue group (no aggregator runs). */
  const inboxes = new Map<string, Subscription | undefined>();
  const joinInbox = (jobId: string, joined: boolean) => {
    const current = inboxes.get(jobId);
    if (joined && !current) inboxes.set(jobId, nc.subscribe(subjects.coordinatorInbox(jobId), { queue: subjects.inboxQueue(jobId), callback: receive(jobId) }));
    if (!joined && current) {
      current.unsubscribe();
      inboxes.set(jobId, undefined);
    }
  };
  // A worker's frames come on its inbox subject, or relayed by an aggregator on the relay subject: both read alike.
  const receive =
    (jobId: string) =>
    (error: unknown, message: { subject: string; data: Uint8Array }): void => {
      if (error) return;
      const connectionId = subjects.connectionOf(message.subject);
      const id = `nats-${jobId}-${connectionId}`;
      let channel = channels.get(id);
      if (!channel) {
        channel = new NatsChannel(id, jobId, connectionId);
        channels.set(id, channel);
        // The hub sets its limits, or turns it away (it is then gone from channels).
        handler.onOpen(channel);
        if (channels.get(id) !== channel) return;
      }
      channel.lastHeardAt = Date.now();
      const frame = message.data;
      const target = channel;
      // Two whole messages may wait; beyond that the sender is far ahead of what it may send.
      if (target.inboxBytes + frame.byteLength > 2 * Math.max(target.messageLimit, maxFrameBytes())) {
        handler.onRefused(target, new TesseraError(ErrorCode.RateLimited, 'frames arrive faster than they are handled', { field: 'message' }));
        return;
      }
      target.inboxBytes += frame.byteLength;
      target.inbox = target.inbox.then(async () => {
        target.inboxBytes -= frame.byteLength;
        let bytes: Uint8Array | undefined = frame;
        if (isChunk(frame)) {
          try {
            // A connection whose messages all fit in one frame (one that has not said hello) has no reason to chunk.
            if (target.messageLimit <= maxFrameBytes())
              throw new TesseraError(
                ErrorCode.TooLarge,
                `chunked messages are for messages above one frame; this connection may send at most ${target.messageLimit} bytes`,
                { field: 'message' },
              );
            bytes = await reassembler.add(target.id, frame, Date.now(), target.messageLimit);
          } catch (failure) {
            const error = isTesseraError(failure) ? failure : new TesseraError(ErrorCode.DecodeFailed, 'a chunk that could not be read', { cause: failure });
            handler.onRefused(target, error);
            target.send({ type: 'reject', ...error.toWire() });
            return;
          }
        }
        if (bytes && channels.get(target.id) === target) handler.onMessage(target, bytes);
      });
    };

  const sweeper = setInterval(
    () => {
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
    },
    Math.max(250, Math.min(options.heartbeatMs, 5_000)),
  );
  sweeper.unref();

  return {
    addJob(jobId: string) {
      joinInbox(jobId, true);
      subscriptions.push(nc.subscribe(subjects.relayInbox(jobId), { callback: receive(jobId) }));
    },
    port(jobId: string): AggregationPort {
      return {
        subscribe: (subject, callback) => {
          subscriptions.push(nc.subscribe(subject, { callback: (error, message) => error || callback(message.subject, message.data) }));
        },
        publish,
        joinInbox: (joined) => joinInbox(jobId, joined),
        maxFrameBytes,
      };
    },
    broadcast(jobId: string, message: CoordinatorMessage) {
      publish(subjects.broadcast(jobId), message);
    },
    async close() {
      clearInterval(sweeper);
      for (const subscription of subscriptions) subscription.unsubscribe();
      for (const jobId of inboxes.keys()) joinInbox(jobId, false);
      await outbox;
      for (const channel of [...channels.values()]) drop(channel, 'coordinator closing');
    },
  };
}
