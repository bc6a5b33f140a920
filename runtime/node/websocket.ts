import WebSocket from 'ws';
import { webSocketTransport, type WebSocketLike } from '../../shared/transport/websocket.ts';
import type { WorkerTransportFactory } from '../../shared/transport/worker.ts';

/** The weights of a large model in one message, with room: ws's default (100 MiB) is below some models'. */
const MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

/**
 * A Node worker's connections to the coordinator's WebSocket `url` (ws://host:port/ws), through the `ws` package.
 * Given several (the coordinators of one job: a leader and standbys), each connection goes to the next in turn, so
 * a worker whose coordinator died, or that a standby refused, finds the one that leads.
 */
export function nodeWebSocketTransport(url: string | readonly string[]): WorkerTransportFactory {
  const open = (address: string): WebSocketLike => new WebSocket(address, { maxPayload: MAX_MESSAGE_BYTES });
  const factories = (typeof url === 'string' ? [url] : url).map((each) => webSocketTransport(each, open));
  let next = 0;
  return (target) => factories[next++ % factories.length]!(target);
}
