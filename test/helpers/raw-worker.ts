import WebSocket from 'ws';
import { pack, unpack } from '../../shared/codec/packr.ts';
import { PROTOCOL_VERSION, type CoordinatorMessage, type Hello } from '../../shared/protocol/messages.ts';

/**
 * A worker connection driven by hand, for tests that say exactly what a
 * (possibly hostile) client would: raw msgpack frames over a WebSocket, every
 * message from the coordinator recorded in order.
 */
export class RawWorker {
  readonly received: CoordinatorMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly socket: WebSocket;
  private readonly opened: Promise<void>;
  private readonly waiters = new Set<() => void>();

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.socket.on('message', (data) => {
      this.received.push(unpack(new Uint8Array(data as Buffer)) as CoordinatorMessage);
      for (const waiter of this.waiters) waiter();
    });
    void this.closed.then(() => {
      for (const waiter of this.waiters) waiter();
    });
  }

  /** Opens the socket and sends a hello (a node worker on wasm unless `fields` say otherwise). */
  async hello(fields: Partial<Hello> = {}): Promise<void> {
    await this.opened;
    this.send({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test', ...fields });
  }

  send(message: unknown): void {
    this.socket.send(pack(message));
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** The first message of a type received after `after` messages (waits for it), or fails after `timeoutMs`. */
  async next<T extends CoordinatorMessage['type']>(type: T, after = 0, timeoutMs = 15_000): Promise<Extract<CoordinatorMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(after).find((message) => message.type === type);
      if (found) return found as Extract<CoordinatorMessage, { type: T }>;
      const left = deadline - Date.now();
      if (this.socket.readyState === WebSocket.CLOSED)
        throw new Error(`the connection closed before a ${type}; received: ${this.received.map((message) => message.type).join(', ')}`);
      if (left <= 0) throw new Error(`no ${type} within ${timeoutMs} ms; received: ${this.received.map((message) => message.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  close(): void {
    this.socket.close();
  }
}
