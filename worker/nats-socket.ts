import { Events, type NatsConnection, type Subscription } from 'nats';
import { isChunk, Reassembler, splitMessage } from '../shared/codec/chunking.ts';
import { LIMITS } from '../shared/protocol/messages.ts';
import { subjects } from '../shared/protocol/subjects.ts';
import { FATAL_CLOSE_CODE, type SocketLike } from '../shared/worker/client.ts';
import { connectNats, natsError, workerConnectionId, type NatsSettings } from '../runtime/node/nats.ts';

type Listener = (event: any) => void;

/**
 * The worker's end of the NATS transport, shaped like a WebSocket so the
 * shared WorkerClient runs on it unchanged: 'open' when subscribed (and again
 * after NATS reconnects, so the worker says hello again and resends what may
 * have been lost), 'message' per whole message in arrival order, 'close' when
 * the connection ends for good.
 */
export class NatsSocket implements SocketLike {
  binaryType = 'arraybuffer';
  readyState = 0;
  private readonly listeners = new Map<string, Listener[]>();
  private connection: NatsConnection | undefined;
  private subscriptions: Subscription[] = [];
  /** Its subjects' connection id: the public key of its nkey when it has one, since the server lets it publish only as that. */
  private readonly connectionId: string;
  private readonly reassembler = new Reassembler(LIMITS.maxTensorBytes + 1024 * 1024);
  private inbox: Promise<void> = Promise.resolve();
  private outbox: Promise<void> = Promise.resolve();
  private nextMessageId = 1;
  private closed = false;

  constructor(
    private readonly settings: NatsSettings,
    private readonly jobId: string,
    private readonly onStatus?: (status: string) => void,
  ) {
    this.connectionId = workerConnectionId(settings);
    void this.open();
  }

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  send(data: Uint8Array): void {
    const connection = this.connection;
    if (!connection || this.closed) return;
    const bytes = data.slice();
    const subject = subjects.toCoordinator(this.jobId, this.connectionId);
    this.outbox = this.outbox
      .then(async () => {
        for (const frame of await splitMessage(bytes, connection.info?.max_payload ?? 1024 * 1024, this.nextMessageId++)) connection.publish(subject, frame);
      })
      .catch(() => {
        /* closed meanwhile */
      });
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    this.readyState = 3;
    const connection = this.connection;
    void (async () => {
      await this.outbox;
      // Flush so a leave message reaches the server before the connection goes.
      await connection?.flush().catch(() => undefined);
      await connection?.close().catch(() => undefined);
      this.emit('close', { code, reason });
    })();
  }

  private async open(): Promise<void> {
    let connection: NatsConnection;
    try {
      connection = await connectNats({ ...this.settings, name: this.settings.name ?? `tessera-worker-${this.connectionId}` });
    } catch (error) {
      const failure = natsError((error as { cause?: unknown }).cause ?? error);
      this.closed = true;
      this.readyState = 3;
      // Bad credentials will not get better by retrying: the client stops on this code.
      this.emit(
        'close',
        failure.code === 'UNAUTHORIZED' ? { code: FATAL_CLOSE_CODE, reason: `${failure.code}: ${failure.message}` } : { code: 1006, reason: failure.message },
      );
      return;
    }
    if (this.closed) {
      await connection.close();
      return;
    }
    this.connection = connection;
    const deliver = (_error: unknown, message: { data: Uint8Array }) => {
      const frame = message.data;
      this.inbox = this.inbox.then(async () => {
        try {
          const bytes = isChunk(frame) ? await this.reassembler.add('coordinator', frame, Date.now()) : frame;
          if (bytes && !this.closed) this.emit('message', { data: bytes });
        } catch {
          /* a corrupt chunked message: the worker asks for the weights again, or the coordinator re-sends its assignment */
        }
      });
    };
    this.subscriptions = [
      connection.subscribe(subjects.toWorker(this.jobId, this.connectionId), { callback: deliver }),
      connection.subscribe(subjects.broadcast(this.jobId), { callback: deliver }),
    ];
    await connection.flush();
    this.readyState = 1;
    this.emit('open', {});
    void this.watch(connection);
  }

  /** Reports NATS status; after a reconnect the worker re-registers, since messages may have been lost meanwhile. */
  private async watch(connection: NatsConnection): Promise<void> {
    void connection.closed().then((error) => {
      if (this.closed) return;
      this.closed = true;
      this.readyState = 3;
      this.emit('close', { code: 1006, reason: error ? `NATS closed: ${error.message}` : 'NATS closed' });
    });
    for await (const status of connection.status()) {
      if (status.type === Events.Disconnect) this.onStatus?.(`NATS disconnected from ${status.data}`);
      if (status.type === Events.Reconnect) {
        this.onStatus?.(`NATS reconnected to ${status.data}`);
        this.emit('open', {});
      }
    }
  }

  private emit(type: string, event: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}
