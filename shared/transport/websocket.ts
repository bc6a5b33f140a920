import type { WorkerTransport, WorkerTransportEvents, WorkerTransportFactory } from './worker.ts';

/** The part of the WebSocket API the worker's adapter uses: the browser's WebSocket and the `ws` package both have it. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (event: any) => void): void;
}

/** WebSocket.OPEN, the same in every implementation. */
const OPEN = 1;
/** A WebSocket close reason holds at most 123 bytes of UTF-8. */
const MAX_CLOSE_REASON_BYTES = 123;

/** `text` cut at a character to fit a WebSocket close reason (browsers and ws throw on a longer one). */
export function closeReason(text: string): string {
  const encoder = new TextEncoder();
  let reason = text.slice(0, MAX_CLOSE_REASON_BYTES);
  while (encoder.encode(reason).byteLength > MAX_CLOSE_REASON_BYTES) reason = reason.slice(0, -1);
  return reason;
}

/**
 * A worker's connections over WebSockets to `url`, one binary message per
 * frame. `open` makes the socket: the browser's `new WebSocket(url)`, or the
 * Node worker's (runtime/node/websocket.ts). Every close is retryable: the
 * coordinator refuses a worker for good with an `error` message, not a close.
 */
export function webSocketTransport(url: string, open: (url: string) => WebSocketLike): WorkerTransportFactory {
  return () => new WebSocketWorkerTransport(url, open);
}

class WebSocketWorkerTransport implements WorkerTransport {
  private socket: WebSocketLike | undefined;

  constructor(
    private readonly url: string,
    private readonly open: (url: string) => WebSocketLike,
  ) {}

  connect(events: WorkerTransportEvents): void {
    const socket = this.open(this.url);
    this.socket = socket;
    socket.binaryType = 'arraybuffer';
    socket.addEventListener('open', () => events.opened());
    socket.addEventListener('message', (event: { data: unknown }) => events.frame(toBytes(event.data)));
    socket.addEventListener('error', () => {
      /* the close event follows */
    });
    socket.addEventListener('close', (event: { code?: number; reason?: string }) =>
      events.closed({ kind: 'retryable', reason: event.reason || `code ${event.code ?? '?'}` }),
    );
  }

  send(bytes: Uint8Array): void {
    if (this.socket?.readyState === OPEN) this.socket.send(bytes);
  }

  close(reason: string): void {
    this.socket?.close(1000, closeReason(reason));
  }
}

/**
 * A frame's payload as bytes. A text frame's go to the decoder as they are
 * (UTF-8 is not msgpack, so it is refused there); anything else is no message.
 */
function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(0);
}
