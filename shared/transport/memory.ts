import { packMessage } from '../codec/packr.ts';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import type { CoordinatorMessage } from '../protocol/messages.ts';
import type { ChannelHandler, CoordinatorTransport, WorkerChannel } from './coordinator.ts';
import type { TransportTarget, WorkerTransport, WorkerTransportEvents, WorkerTransportFactory } from './worker.ts';

/**
 * Both ends of a transport in one process: the coordinator's (a
 * CoordinatorTransport) and a factory of workers' connections to it. Every
 * message is packed to bytes and handed over on a later turn, in the order
 * sent, as a network would: the hub decodes and checks exactly what a socket
 * would have carried, and no side acts on a message inside the call that sent
 * it. A connection's message limit is kept as a WebSocket's is, and a
 * broadcast reaches the connections opened for its job, as over NATS. For
 * tests: the transport contract in milliseconds, and many workers in one
 * process.
 */
export class MemoryTransport implements CoordinatorTransport {
  readonly name = 'memory';
  private handler: ChannelHandler | undefined;
  private state: 'new' | 'listening' | 'closed' = 'new';
  private readonly links = new Set<MemoryLink>();

  async start(handler: ChannelHandler): Promise<void> {
    if (this.state !== 'new') throw new Error(`the memory transport was ${this.state === 'closed' ? 'closed' : 'started'} already`);
    this.handler = handler;
    this.state = 'listening';
  }

  /** Nothing to do: each connection names its job when it opens. */
  addJob(_jobId: string): void {}

  broadcast(jobId: string, message: CoordinatorMessage): boolean {
    const bytes = packMessage(message).slice();
    for (const link of this.links) if (link.jobId === jobId) link.toWorker(bytes);
    return true;
  }

  async close(): Promise<void> {
    this.state = 'closed';
    for (const link of [...this.links]) link.end('coordinator closing');
  }

  /** A worker's connection to this coordinator: a WorkerTransportFactory. */
  readonly connect: WorkerTransportFactory = (target) => new MemoryWorkerTransport(this, target);

  /** Opens a link for a connecting worker, or says why it cannot (nothing listening). */
  accept(target: TransportTarget, events: WorkerTransportEvents): MemoryLink | string {
    if (this.state !== 'listening') return this.state === 'new' ? 'nothing listening yet' : 'nothing listening any more';
    const link = new MemoryLink(`memory-${++connections}`, target.jobId, this.handler!, events, () => this.links.delete(link));
    this.links.add(link);
    return link;
  }
}

let connections = 0;

/** Runs `task` on a later turn of the event loop; tasks run in the order they were given. */
const later = (task: () => void): void => void setTimeout(task, 0);

/** One connection: its coordinator end (`channel`), what the worker end calls, and its end, told to both sides once. */
class MemoryLink {
  readonly channel: WorkerChannel;
  /** No limit until the handler sets one, as a socket has only its server's. */
  private messageLimit = Infinity;
  /** No more sends are taken once ending; what was sent before is still delivered, then both ends are told. */
  private ending = false;
  private ended = false;

  constructor(
    readonly id: string,
    readonly jobId: string | undefined,
    private readonly handler: ChannelHandler,
    private readonly events: WorkerTransportEvents,
    private readonly onEnd: () => void,
  ) {
    this.channel = {
      id,
      transport: 'memory',
      remote: id,
      address: id,
      send: (message) => this.toWorker(packMessage(message).slice()),
      close: (reason) => this.end(reason),
      limitMessages: (maxBytes) => (this.messageLimit = maxBytes),
    };
  }

  /** The handler opens the channel, then the worker is told it may send (unless the handler closed it). */
  open(): void {
    this.handler.onOpen(this.channel);
    if (!this.ending) this.events.opened();
  }

  toWorker(bytes: Uint8Array): void {
    if (this.ending) return;
    later(() => {
      if (!this.ended) this.events.frame(bytes);
    });
  }

  toCoordinator(bytes: Uint8Array): void {
    if (this.ending) return;
    const copy = bytes.slice();
    later(() => {
      if (this.ended) return;
      // Checked on arrival, as a WebSocket server reads a frame's declared length.
      if (copy.byteLength > this.messageLimit) {
        this.handler.onRefused(this.channel, new TesseraError(ErrorCode.TooLarge, "a message above this connection's limit", { field: 'message' }));
        this.end(`${ErrorCode.TooLarge}: a message of ${copy.byteLength} bytes, above ${this.messageLimit}`);
        return;
      }
      this.handler.onMessage(this.channel, copy);
    });
  }

  end(reason: string): void {
    if (this.ending) return;
    this.ending = true;
    this.onEnd();
    later(() => {
      this.ended = true;
      this.handler.onClose(this.channel, reason);
      this.events.closed({ kind: 'retryable', reason });
    });
  }
}

/** The worker's end of a memory connection. */
class MemoryWorkerTransport implements WorkerTransport {
  private link: MemoryLink | undefined;
  private closedEarly: string | undefined;

  constructor(
    private readonly coordinator: MemoryTransport,
    private readonly target: TransportTarget,
  ) {}

  connect(events: WorkerTransportEvents): void {
    later(() => {
      const accepted = this.closedEarly ?? this.coordinator.accept(this.target, events);
      if (typeof accepted === 'string') {
        events.closed({ kind: 'retryable', reason: accepted });
        return;
      }
      this.link = accepted;
      accepted.open();
    });
  }

  send(bytes: Uint8Array): void {
    this.link?.toCoordinator(bytes);
  }

  close(reason: string): void {
    if (this.link) this.link.end(reason);
    else this.closedEarly ??= reason;
  }
}
