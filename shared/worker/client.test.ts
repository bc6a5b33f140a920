import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import type { TransportClosed, WorkerTransport, WorkerTransportEvents, WorkerTransportFactory } from '../transport/worker.ts';
import { WorkerClient, type WorkerEvent } from './client.ts';

/**
 * How the client acts on the way a connection ends: a retryable close brings
 * a new connection after the backoff, a fatal one (or a transport that cannot
 * be opened as configured) stops it with the reason named.
 */

/** Connections that end as the test says, each recorded with the target it was opened for. */
function scriptedTransport(ending: (attempt: number) => TransportClosed | undefined) {
  const opened: { jobId?: string }[] = [];
  const factory: WorkerTransportFactory = (target) => {
    const attempt = opened.push(target);
    let events: WorkerTransportEvents | undefined;
    const transport: WorkerTransport = {
      connect(given) {
        events = given;
        const closed = ending(attempt);
        if (closed) setTimeout(() => events!.closed(closed), 0);
      },
      send: () => {},
      close: (reason) => setTimeout(() => events?.closed({ kind: 'retryable', reason }), 0),
    };
    return transport;
  };
  return { factory, opened };
}

function client(transport: WorkerTransportFactory, events: WorkerEvent[]) {
  return new WorkerClient({
    jobId: 'job-a',
    kind: 'node',
    backend: 'cpu',
    device: 'test',
    transport,
    loadBatch: () => {
      throw new Error('no batch in this test');
    },
    onEvent: (event) => events.push(event),
    reconnectInitialMs: 1,
    reconnectMaxMs: 1,
  });
}

describe('WorkerClient and its transport', () => {
  it('connects again after a retryable close, with the same job', async () => {
    const { factory, opened } = scriptedTransport((attempt) => (attempt === 1 ? { kind: 'retryable', reason: 'link lost' } : undefined));
    const events: WorkerEvent[] = [];
    const worker = client(factory, events);
    worker.start();
    await expect.poll(() => opened.length).toBe(2);
    expect(opened).toEqual([{ jobId: 'job-a' }, { jobId: 'job-a' }]);
    expect(events).toEqual([{ type: 'disconnected', reason: 'link lost', retryInMs: expect.any(Number) }]);
    await worker.stop();
  });

  it('stops for good on a fatal close, naming its code', async () => {
    const refused = new TesseraError(ErrorCode.Unauthorized, 'NATS refused the credentials', { field: 'nats' });
    const { factory, opened } = scriptedTransport(() => ({ kind: 'fatal', error: refused }));
    const events: WorkerEvent[] = [];
    const worker = client(factory, events);
    worker.start();
    expect(await worker.done).toBe(`${ErrorCode.Unauthorized}: ${refused.message}`);
    expect(events).toEqual([{ type: 'fatal', error: refused }]);
    expect(opened).toHaveLength(1);
  });

  it('stops for good when its transport cannot be opened as configured', async () => {
    const events: WorkerEvent[] = [];
    const worker = client(() => {
      throw new TesseraError(ErrorCode.InvalidConfig, 'a worker over NATS must name its job', { field: 'jobId' });
    }, events);
    worker.start();
    expect(await worker.done).toMatch(/^INVALID_CONFIG: a worker over NATS must name its job/);
    expect(events.map((event) => event.type)).toEqual(['fatal']);
  });
});
