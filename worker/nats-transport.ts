import { Events, type NatsConnection } from 'nats';
import { isChunk, Reassembler, splitMessage } from '../shared/codec/chunking.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { LIMITS } from '../shared/protocol/messages.ts';
import { subjects } from '../shared/protocol/subjects.ts';
import type { TransportClosed, WorkerTransport, WorkerTransportEvents, WorkerTransportFactory } from '../shared/transport/worker.ts';
import { connectNats, natsError, workerConnectionId, type NatsSettings } from '../runtime/node/nats.ts';

/**
 * A Node worker's connections over NATS: each its own NATS connection,
 * publishing on its subject to the coordinator and listening on its own
 * subject and the job's broadcast (shared/protocol/subjects.ts). The subjects
 * name the job, so the client's `jobId` is required: a worker without one is
 * refused here rather than sent to a job it did not name. `onStatus` is told
 * of NATS disconnects and reconnects.
 */
export function natsWorkerTransport(settings: NatsSettings, onStatus?: (status: string) => void): WorkerTransportFactory {
  return ({ jobId }) => {
    if (jobId === undefined)
      throw new TesseraError(ErrorCode.InvalidConfig, 'a worker over NATS must name its job: the job id is part of its subjects', { field: 'jobId' });
    // Throws for a job id that cannot be a subject token, naming it.
    subjects.broadcast(jobId);
    return new NatsWorkerTransport(settings, jobId, onStatus);
  };
}

/**
 * One connection: opened once subscribed (and again after NATS reconnects,
 * so the worker says hello again and resends what may have been lost), whole
 * messages in arrival order, closed when the connection ends for good. Wrong
 * credentials are fatal: they would be refused again.
 */
class NatsWorkerTransport implements WorkerTransport {
  private events: WorkerTransportEvents | undefined;
  private connection: NatsConnection | undefined;
  /** Its subjects' connection id: the public key of its nkey when it has one, since the server lets it publish only as that. */
  private readonly connectionId: string;
  private readonly reassembler = new Reassembler(LIMITS.maxTensorBytes + 1024 * 1024);
  private inbox: Promise<void> = Promise.resolve();
  private outbox: Promise<void> = Promise.resolve();
  private nextMessageId = 1;
  /** close() was called, or the connection could not be made: nothing more is sent or delivered. */
  private closing = false;
  private ended = false;

  constructor(
    private readonly settings: NatsSettings,
    private readonly jobId: string,
    private readonly onStatus?: (status: string) => void,
  ) {
    this.connectionId = workerConnectionId(settings);
  }

  connect(events: WorkerTransportEvents): void {
    this.events = events;
    void this.open();
  }

  send(bytes: Uint8Array): void {
    const connection = this.connection;
    if (!connection || this.closing) return;
    const copy = bytes.slice();
    const subject = subjects.toCoordinator(this.jobId, this.connectionId);
    this.outbox = this.outbox
      .then(async () => {
        for (const frame of await splitMessage(copy, connection.info?.max_payload ?? 1024 * 1024, this.nextMessageId++)) connection.publish(subject, frame);
      })
      .catch(() => {
        /* closed meanwhile */
      });
  }

  close(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    const connection = this.connection;
    void (async () => {
      await this.outbox;
      // Flush so a leave message reaches the server before the connection goes.
      await connection?.flush().catch(() => undefined);
      await connection?.close().catch(() => undefined);
      this.finish({ kind: 'retryable', reason });
    })();
  }

  private finish(reason: TransportClosed): void {
    if (this.ended) return;
    this.ended = true;
    this.events?.closed(reason);
  }

  private async open(): Promise<void> {
    let connection: NatsConnection;
    try {
      connection = await connectNats({ ...this.settings, name: this.settings.name ?? `tessera-worker-${this.connectionId}` });
    } catch (error) {
      const failure = natsError((error as { cause?: unknown }).cause ?? error);
      this.closing = true;
      this.finish(failure.code === ErrorCode.Unauthorized ? { kind: 'fatal', error: failure } : { kind: 'retryable', reason: failure.message });
      return;
    }
    if (this.closing) {
      await connection.close();
      return;
    }
    this.connection = connection;
    const deliver = (_error: unknown, message: { data: Uint8Array }) => {
      const frame = message.data;
      this.inbox = this.inbox.then(async () => {
        try {
          const bytes = isChunk(frame) ? await this.reassembler.add('coordinator', frame, Date.now()) : frame;
          if (bytes && !this.closing) this.events!.frame(bytes);
        } catch {
          /* a corrupt chunked message: the worker asks for the weights again, or the coordinator re-sends its assignment */
        }
      });
    };
    connection.subscribe(subjects.toWorker(this.jobId, this.connectionId), { callback: deliver });
    connection.subscribe(subjects.broadcast(this.jobId), { callback: deliver });
    void this.watch(connection);
    // Subscribed on the server before the worker says hello, so the welcome cannot come before its subscription.
    await connection.flush().catch(() => undefined);
    if (!this.closing) this.events!.opened();
  }

  /** Reports NATS status; after a reconnect the worker re-registers, since messages may have been lost meanwhile. */
  private async watch(connection: NatsConnection): Promise<void> {
    void connection.closed().then((error) => {
      if (this.closing) return;
      this.closing = true;
      this.finish({ kind: 'retryable', reason: error ? `NATS closed: ${error.message}` : 'NATS closed' });
    });
    for await (const status of connection.status()) {
      if (status.type === Events.Disconnect) this.onStatus?.(`NATS disconnected from ${status.data}`);
      if (status.type === Events.Reconnect) {
        this.onStatus?.(`NATS reconnected to ${status.data}`);
        if (!this.closing) this.events!.opened();
      }
    }
  }
}
