import WebSocket from 'ws';
import { webSocketTransport, type WebSocketLike } from '../../shared/transport/websocket.ts';
import type { WorkerTransportFactory } from '../../shared/transport/worker.ts';

/** The weights of a large model in one message, with room: ws's default (100 MiB) is below some models'. */
const MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

/** A Node worker's connections to the coordinator's WebSocket `url` (ws://host:port/ws), through the `ws` package. */
export function nodeWebSocketTransport(url: string): WorkerTransportFactory {
  return webSocketTransport(url, (address): WebSocketLike => new WebSocket(address, { maxPayload: MAX_MESSAGE_BYTES }));
}
