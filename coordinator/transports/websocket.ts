import type { IncomingMessage, Server } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { pack } from '../../shared/codec/packr.ts';
import { LIMITS, type CoordinatorMessage } from '../../shared/protocol/messages.ts';
import type { ChannelHandler, WorkerChannel } from './types.ts';

export interface WebSocketTransportOptions {
  path: string;
  /** Ping period; a connection that misses two pongs in a row is dropped (a crashed worker, a dead link). */
  pingIntervalMs: number;
}

/** Turns ws's message payload into one Uint8Array. */
function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

class WebSocketChannel implements WorkerChannel {
  readonly transport = 'websocket';
  alive = true;

  constructor(
    readonly id: string,
    readonly remote: string,
    readonly socket: WebSocket,
  ) {}

  send(message: CoordinatorMessage): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(pack(message));
  }

  close(reason: string): void {
    this.socket.close(1000, reason.slice(0, 120));
  }
}

/** Serves the worker protocol on `path` of an HTTP server: one binary msgpack message per frame. */
export function attachWebSocketTransport(server: Server, handler: ChannelHandler, options: WebSocketTransportOptions): { close(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: LIMITS.maxTensorBytes + 1024 * 1024 });
  let nextId = 0;
  server.on('upgrade', (request: IncomingMessage, socket, head) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path !== options.path) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const remote = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
      const channel = new WebSocketChannel(`ws-${++nextId}`, remote, ws);
      ws.on('pong', () => (channel.alive = true));
      ws.on('message', (data, isBinary) => {
        channel.alive = true;
        handler.onMessage(channel, isBinary ? toBytes(data) : new TextEncoder().encode(data.toString()));
      });
      ws.on('close', (code, reason) => handler.onClose(channel, `closed (${code}${reason.length ? `: ${reason}` : ''})`));
      ws.on('error', () => ws.terminate());
      channels.add(channel);
      ws.on('close', () => channels.delete(channel));
    });
  });
  const channels = new Set<WebSocketChannel>();
  const pinger = setInterval(() => {
    for (const channel of channels) {
      if (!channel.alive) {
        channel.socket.terminate();
        continue;
      }
      channel.alive = false;
      channel.socket.ping();
    }
  }, options.pingIntervalMs);
  pinger.unref();
  return {
    close() {
      clearInterval(pinger);
      for (const channel of channels) channel.socket.terminate();
      wss.close();
    },
  };
}
