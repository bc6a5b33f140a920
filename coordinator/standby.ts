import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { errorBody } from './api/auth.ts';

/** What the standby says of the lease it waits for. */
export interface StandbyState {
  jobId: string;
  /** Who holds the lease, as last seen; undefined while nobody does (it expires, or is being taken). */
  holder(): string | undefined;
}

/**
 * The HTTP server of a coordinator waiting for its job's lease (a standby):
 * alive (`/health`, `/healthz`: 200) but not ready (`/readyz`: 503), so a
 * Kubernetes Service sends it no traffic; a worker's WebSocket is refused
 * with an HTTP 503 before the upgrade, and every other route with a 503
 * NOT_READY at `lease`, so clients try the leader. Closed when the lease is
 * taken, and the coordinator proper listens on the same port.
 */
export async function serveStandby(port: number, host: string, state: StandbyState): Promise<{ port: number; close(): Promise<void> }> {
  const why = () =>
    `standby coordinator of job ${state.jobId}: the lease is held by ${state.holder() ?? 'nobody just now (it is being taken)'}; try the leader`;
  const app = new Hono();
  const alive = () => ({ ok: true, jobs: 0, standby: true, job: state.jobId, leader: state.holder() ?? null });
  app.get('/health', (c) => c.json(alive()));
  app.get('/healthz', (c) => c.json(alive()));
  app.get('/readyz', (c) => c.json({ ready: false, reason: why() }, 503));
  app.all('*', (c) => c.json(errorBody(new TesseraError(ErrorCode.NotReady, why(), { field: 'lease' })), 503, { 'retry-after': '1' }));
  const server = await new Promise<Server>((resolve) => {
    const created = serve({ fetch: app.fetch, port, hostname: host }, () => resolve(created as Server)) as Server;
  });
  // A WebSocket handshake gets a plain HTTP answer: the worker's socket closes, and it reconnects (to its next --url).
  server.on('upgrade', (_request, socket) => {
    const body = `${why()}\n`;
    socket.end(
      `HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
