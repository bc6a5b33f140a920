import { pack } from '../../shared/codec/packr.ts';
import type { CoordinatorMessage } from '../../shared/protocol/messages.ts';
import type { SocketLike } from '../../shared/worker/client.ts';
import type { ChannelHandler, WorkerChannel } from '../../coordinator/transports/types.ts';

type Listener = (event: any) => void;

let connections = 0;

/**
 * A worker's socket and the coordinator's channel of one in-process
 * connection: every message is packed to bytes and handed over on a later
 * turn of the event loop, as a network would, so the hub decodes and checks
 * exactly what a socket would have carried. `outgoing` may rewrite the bytes
 * a worker sends (a hostile worker's tampering).
 */
export class MemorySocket implements SocketLike {
  binaryType = 'arraybuffer';
  readyState = 0;
  readonly channel: WorkerChannel;
  private readonly listeners = new Map<string, Listener[]>();

  constructor(
    private readonly hub: ChannelHandler,
    private readonly outgoing: (bytes: Uint8Array) => Uint8Array = (bytes) => bytes,
  ) {
    const id = `memory-${++connections}`;
    this.channel = {
      id,
      transport: 'memory',
      remote: id,
      address: id,
      // In memory nothing is buffered by a socket: the hub's own budgets still apply to each message.
      limitMessages: () => undefined,
      send: (message: CoordinatorMessage) => {
        const bytes = pack(message).slice();
        setImmediate(() => this.readyState === 1 && this.dispatch('message', { data: bytes }));
      },
      close: (reason: string) => this.shut(1000, reason),
    };
    setImmediate(() => {
      this.readyState = 1;
      this.dispatch('open', {});
    });
  }

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) return;
    const bytes = this.outgoing(data.slice());
    setImmediate(() => this.readyState === 1 && this.hub.onMessage(this.channel, bytes));
  }

  close(code = 1000, reason = ''): void {
    this.shut(code, reason);
  }

  private shut(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setImmediate(() => {
      this.hub.onClose(this.channel, reason);
      this.dispatch('close', { code, reason });
    });
  }

  private dispatch(type: string, event: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}
