import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { packMessage } from '../../shared/codec/packr.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { LIMITS, type CoordinatorMessage } from '../../shared/protocol/messages.ts';
import type { ChannelHandler, CoordinatorTransport, WorkerChannel } from '../../shared/transport/coordinator.ts';
import { closeReason } from '../../shared/transport/websocket.ts';
import { handOver } from './handed-over.ts';

export interface WebSocketTransportOptions {
  path: string;
  /** Ping period; a connection that misses two pongs in a row is dropped (a crashed worker, a dead link). */
  pingIntervalMs: number;
  /**
   * Bytes queued toward one worker beyond which it is closed instead of sent
   * more: a worker that does not read (asking for weights again and again)
   * must not make the coordinator hold its messages.
   */
  maxBufferedBytes?: number;
}

/** One weights message of a large model, with room for the small messages around it. */
const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
/** How long a worker closed for not reading gets to take its close frame before its socket is cut. */
const SLOW_READER_CLOSE_MS = 1_000;
/** How long a peer that sent an oversized frame has to read the 1009 before its socket is cut. */
const OVERSIZE_CLOSE_MS = 1_000;

/** Turns ws's message payload into one Uint8Array. */
function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** ws's TCP socket under a WebSocket, reached through a private field (see batch): undefined once ws let go of it. */
interface SocketInternals {
  _socket?: Socket;
}

/** ws's receiver of a socket, reached through a private field (see limitMessages). */
interface ReceiverInternals {
  _receiver?: { _maxPayload?: unknown };
}

class WebSocketChannel implements WorkerChannel {
  readonly transport = 'websocket';
  alive = true;

  constructor(
    readonly id: string,
    readonly remote: string,
    readonly address: string,
    readonly socket: WebSocket,
    private readonly maxBufferedBytes: number,
  ) {}

  send(message: CoordinatorMessage): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.socket.bufferedAmount > this.maxBufferedBytes) {
      this.closeSlowReader();
      return;
    }
    this.socket.send(packMessage(message));
  }

  /**
   * A round's weights and assignment to one worker go out in one system call
   * rather than one each (ws writes every message at once): with 512 workers,
   * the fan-out's calls cost the event loop more than its bytes
   * (docs/performance.md). ws corks the socket per frame; the counts nest.
   */
  batch(send: () => void): void {
    const tcp = (this.socket as unknown as SocketInternals)._socket;
    tcp?.cork();
    try {
      send();
    } finally {
      tcp?.uncork();
    }
  }

  close(reason: string): void {
    this.socket.close(1000, closeReason(reason));
  }

  /**
   * Lowers or raises the largest message ws accepts on this socket. ws 8 has
   * one maxPayload per server and checks it against each frame's declared
   * length before buffering the frame (receiver.js, haveLength), so setting
   * the receiver's `_maxPayload` refuses an oversized frame from its header.
   * It is a ws internal: websocket.test.ts fails if it stops working, and
   * this throws rather than run without a limit.
   */
  limitMessages(maxBytes: number): void {
    const receiver = (this.socket as unknown as ReceiverInternals)._receiver;
    if (!receiver || typeof receiver._maxPayload !== 'number') throw new Error('ws internals changed: the receiver has no _maxPayload to limit messages with');
    // 0 would mean no limit at all to ws.
    receiver._maxPayload = Math.max(1, Math.floor(maxBytes));
  }

  private closeSlowReader(): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.close(`${ErrorCode.RateLimited}: not reading its messages`);
    // The close frame waits behind what the worker has not read; it may never take it.
    setTimeout(() => this.socket.terminate(), SLOW_READER_CLOSE_MS).unref();
  }
}

/**
 * Serves the worker protocol on `path` of an HTTP server: one binary msgpack
 * message per frame. Every socket starts at the pre-hello message limit; the
 * hub raises it once the worker is welcomed. There is no broadcast: each
 * worker fetches the weights by hash, and the hello names the job.
 */
export class WebSocketTransport implements CoordinatorTransport {
  readonly name = 'websocket';
  private readonly channels = new Set<WebSocketChannel>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    // The limit until the hub says otherwise (onOpen sets it again): nothing larger than a hello is read from a stranger.
    maxPayload: LIMITS.maxHelloBytes,
    // Compression would let a small frame inflate to the limit: off, as it is by default on a server.
    perMessageDeflate: false,
  });
  private upgrade: ((request: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  private pinger: ReturnType<typeof setInterval> | undefined;
  private nextId = 0;

  constructor(
    private readonly server: Server,
    private readonly options: WebSocketTransportOptions,
  ) {}

  async start(handler: ChannelHandler): Promise<void> {
    if (this.upgrade) throw new Error('the WebSocket transport was started already');
    this.upgrade = (request, socket, head) => {
      const path = new URL(request.url ?? '/', 'http://localhost').pathname;
      if (path !== this.options.path) {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request, handler));
    };
    this.server.on('upgrade', this.upgrade);
    this.pinger = setInterval(() => this.ping(), this.options.pingIntervalMs);
    this.pinger.unref();
  }

  /** Nothing to do: a worker names its job in its hello. */
  addJob(_jobId: string): void {}

  broadcast(_jobId: string, _message: CoordinatorMessage): boolean {
    return false;
  }

  async close(): Promise<void> {
    clearInterval(this.pinger);
    if (this.upgrade) this.server.off('upgrade', this.upgrade);
    for (const channel of this.channels) channel.socket.terminate();
    this.wss.close();
  }

  private accept(ws: WebSocket, request: IncomingMessage, handler: ChannelHandler): void {
    const address = request.socket.remoteAddress ?? 'unknown';
    const channel = new WebSocketChannel(
      `ws-${++this.nextId}`,
      `${address}:${request.socket.remotePort}`,
      address,
      ws,
      this.options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    );
    ws.on('pong', () => (channel.alive = true));
    ws.on('message', (data) => {
      channel.alive = true;
      // A text frame's bytes go to the decoder as they are (UTF-8 is not msgpack, so it is refused there), not through a string.
      // A message ws read into a buffer of its own is handed over: the fold thread takes an update's buffer instead of a copy.
      handler.onMessage(channel, handOver(toBytes(data)));
    });
    ws.on('close', (code, reason) => {
      this.channels.delete(channel);
      handler.onClose(channel, `closed (${code}${reason.length ? `: ${reason}` : ''})`);
    });
    ws.on('error', (error: Error & { code?: string }) => {
      if (error.code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        ws.terminate();
        return;
      }
      // ws refused the frame from its header and sent close 1009. It would read and discard whatever still comes;
      // stop reading instead (after ws's own resume, on the next tick), so a sender streaming 64 MB costs nothing.
      // Cut the socket a moment later, not at once: a reset now would destroy the 1009 before the peer reads it.
      handler.onRefused(channel, new TesseraError(ErrorCode.TooLarge, "a message above this connection's limit", { field: 'message' }));
      setImmediate(() => ws.pause());
      setTimeout(() => ws.terminate(), OVERSIZE_CLOSE_MS).unref();
    });
    this.channels.add(channel);
    // Before any message is read: ws reads the socket from the next tick on.
    handler.onOpen(channel);
  }

  /** A connection that missed the last ping is dropped (a crashed worker, a dead link). */
  private ping(): void {
    for (const channel of this.channels) {
      if (!channel.alive) {
        channel.socket.terminate();
        continue;
      }
      channel.alive = false;
      channel.socket.ping();
    }
  }
}
