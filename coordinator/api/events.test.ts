import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Hub } from '../hub.ts';
import type { JobRunner } from '../job/runner.ts';
import type { JobStatus } from '../../shared/api/jobs.ts';
import { testHub } from '../test-fixtures.ts';
import { addEventRoutes } from './events.ts';

/**
 * Event streams over a real HTTP server: a reader that stops reading is
 * dropped once it falls behind by the queue's bound (after the socket's own
 * buffers filled), while a reader that keeps up stays subscribed.
 */

describe('event streams', () => {
  let dir: string;
  let hub: Hub;
  let runner: JobRunner;
  let server: Server;
  let port: number;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-events-'));
    ({ hub, runner } = testHub(dir));
    const app = new Hono();
    addEventRoutes(app, hub, { maxQueuedEvents: 1_000, maxQueuedBytes: 256 * 1024 });
    server = await new Promise<Server>((resolve) => {
      const created = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(created as Server)) as Server;
    });
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
    hub.dispose();
    await runner.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the job's event stream; `read` false leaves everything the server sends unread. */
  function open(read: boolean): Promise<{ socket: Socket; received: () => number; text: () => string }> {
    let received = 0;
    let text = '';
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.write('GET /api/jobs/unit/events HTTP/1.1\r\nHost: localhost\r\n\r\n');
        if (read) {
          socket.on('data', (chunk: Buffer) => {
            received += chunk.byteLength;
            if (text.length < 100_000) text += chunk.toString();
          });
        } else socket.pause();
        resolve({ socket, received: () => received, text: () => text });
      });
      socket.on('error', () => {});
    });
  }

  it('drops a reader that stopped reading once it is far enough behind, and keeps one that reads', async () => {
    const listeners = runner.listenerCount('status');
    const reader = await open(true);
    const stalled = await open(false);
    await vi.waitFor(() => expect(runner.listenerCount('status')).toBe(listeners + 2));
    // 1 kB events, a hundred per turn of the event loop: the stalled socket's buffers fill within some MB.
    const status = 'x'.repeat(1000) as JobStatus;
    for (let i = 0; i < 40_000 && runner.listenerCount('status') > listeners + 1; i++) {
      runner.emit('status', status);
      if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    await vi.waitFor(() => expect(runner.listenerCount('status')).toBe(listeners + 1));
    // The one still subscribed is the reader, and it got the events.
    expect(reader.received()).toBeGreaterThan(1_000_000);
    expect(reader.socket.destroyed).toBe(false);
    reader.socket.destroy();
    stalled.socket.destroy();
    await vi.waitFor(() => expect(runner.listenerCount('status')).toBe(listeners));
  });

  it('sends the quality history in the snapshot and each new scoring as a quality event', async () => {
    const row = {
      kind: 'quality',
      round: 4,
      version: 5,
      samplesSeen: 320,
      wallMs: 9_000,
      closedAt: new Date(0).toISOString(),
      dataset: 'mnist',
      count: 64,
      frechet: 70,
      frechetFloor: 35,
      precision: 0.6,
      recall: 0.5,
      recognisable: 0.4,
      coverageEntropy: 0.95,
      ms: 800,
    } as const;
    runner.quality.restore([{ ...row, round: 1, frechet: 90 }], undefined);
    const listeners = runner.quality.listenerCount('quality');
    const reader = await open(true);
    await vi.waitFor(() => expect(reader.text()).toContain('event: snapshot'));
    expect(reader.text()).toMatch(/"quality":\[\{"kind":"quality","round":1,.*"frechet":90/);
    runner.quality.emit('quality', row);
    await vi.waitFor(() => expect(reader.text()).toContain('event: quality'));
    expect(reader.text()).toContain(`data: ${JSON.stringify(row)}`);
    reader.socket.destroy();
    await vi.waitFor(() => expect(runner.quality.listenerCount('quality')).toBe(listeners));
  });
});
