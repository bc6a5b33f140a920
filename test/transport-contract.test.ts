import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { WorkerClient, type SocketLike, type WorkerEvent } from '../shared/worker/client.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { NatsSocket } from '../worker/nats-socket.ts';
import { freePort, NatsServer } from './helpers/nats-server.ts';

/**
 * One contract, two transports: everything a worker does with its
 * coordinator — register, get work, fetch weights, send updates, keep alive,
 * leave, come back — behaves the same over WebSockets and over NATS. The
 * coordinator, hub, worker client and nats-server are the real ones.
 */

const HEARTBEAT_MS = 200;
// Longer than a compute step here (the coordinator shares this process with the worker).
const SILENCE_MS = 3_000;
const outputDir = mkdtempSync(join(tmpdir(), 'tessera-contract-'));

interface Harness {
  name: 'websocket' | 'nats';
  setup(): Promise<void>;
  /** Starts (or restarts on the same address) the coordinator. */
  startCoordinator(): Promise<Coordinator>;
  socket(coordinator: Coordinator): SocketLike;
  /** Restarts what carries the messages: the coordinator for WebSockets, the nats-server for NATS. */
  restartCarrier(): Promise<void>;
  teardown(): Promise<void>;
}

let coordinator: Coordinator | undefined;
let port = 0;
const nats = { server: undefined as NatsServer | undefined };

function coordinatorOptions(extra: object = {}) {
  return {
    port,
    host: '127.0.0.1',
    heartbeatMs: HEARTBEAT_MS,
    silenceTimeoutMs: SILENCE_MS,
    job: {
      id: 'contract',
      // Width 112 makes each update about 6 MB: above NATS's 1 MB max_payload, so it must be chunked.
      model: { config: { width: 112, latentDim: 64 } },
      training: { batchSize: 2, roundDeadlineMs: 20_000 },
      output: { dir: outputDir, checkpointEvery: 1000, sampleEvery: 1000, exportEvery: 1000 },
    },
    ...extra,
  };
}

const harnesses: Harness[] = [
  {
    name: 'websocket',
    async setup() {
      port = await freePort();
    },
    async startCoordinator() {
      return startCoordinator(coordinatorOptions());
    },
    socket: (running) => new WebSocket(`ws://127.0.0.1:${running.port}/ws`) as unknown as SocketLike,
    async restartCarrier() {
      await coordinator!.close();
      coordinator = await startCoordinator(coordinatorOptions());
    },
    async teardown() {},
  },
  {
    name: 'nats',
    async setup() {
      port = await freePort();
      nats.server = new NatsServer(await freePort());
      await nats.server.start();
    },
    async startCoordinator() {
      return startCoordinator(coordinatorOptions({ nats: { servers: [nats.server!.url] } }));
    },
    socket: () => new NatsSocket({ servers: [nats.server!.url] }, 'contract'),
    async restartCarrier() {
      await nats.server!.stop();
      await new Promise((resolve) => setTimeout(resolve, 500));
      await nats.server!.start();
    },
    async teardown() {
      await nats.server?.stop();
    },
  },
];

/** A worker client that records its events and can wait for one. */
function startWorker(harness: Harness) {
  const events: WorkerEvent[] = [];
  const waiters = new Set<() => void>();
  const client = new WorkerClient({
    url: 'unused',
    jobId: 'contract',
    kind: 'node',
    backend: 'wasm',
    device: 'test',
    name: `contract-${harness.name}`,
    createSocket: () => harness.socket(coordinator!),
    loadBatch: (_dataset, indices) => loadMnist().batch(indices),
    onEvent: (event) => {
      events.push(event);
      for (const waiter of waiters) waiter();
    },
    reconnectInitialMs: 100,
    reconnectMaxMs: 500,
  });
  client.start();
  const waitFor = (predicate: (event: WorkerEvent) => boolean, timeoutMs = 30_000, from = 0) =>
    new Promise<WorkerEvent>((resolve, reject) => {
      const check = () => {
        const found = events.slice(from).find(predicate);
        if (found) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching event within ${timeoutMs} ms; events: ${JSON.stringify(events.map((event) => event.type))}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { client, events, waitFor };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

beforeAll(async () => {
  await selectNodeBackend('wasm');
});

afterAll(() => rmSync(outputDir, { recursive: true, force: true }));

describe.each(harnesses)('transport contract: $name', (harness) => {
  let workers: ReturnType<typeof startWorker>[] = [];

  beforeAll(async () => {
    await harness.setup();
  });
  afterEach(async () => {
    await Promise.all(workers.map((worker) => worker.client.stop('test over')));
    workers = [];
    await coordinator?.close();
    coordinator = undefined;
    rmSync(join(outputDir, 'contract'), { recursive: true, force: true });
  });
  afterAll(async () => {
    await harness.teardown();
  });

  const launch = async () => {
    coordinator = await harness.startCoordinator();
    const worker = startWorker(harness);
    workers.push(worker);
    return worker;
  };

  it('registers: hello gets a welcome with a worker id, and the hub lists the worker on this transport', async () => {
    const worker = await launch();
    const connected = await worker.waitFor((event) => event.type === 'connected');
    expect(connected).toMatchObject({ jobId: 'contract', modelId: 'dcgan' });
    const session = coordinator!.hub.sessions.get(worker.client.workerId!);
    expect(session?.channel?.transport).toBe(harness.name);
  });

  it('runs rounds: assign, weights fetched by hash, a 6 MB update acknowledged and applied', async () => {
    const worker = await launch();
    await worker.waitFor((event) => event.type === 'ack' && event.round === 2);
    const session = coordinator!.hub.sessions.get(worker.client.workerId!)!;
    expect(session.updatesAccepted).toBeGreaterThanOrEqual(3);
    expect(worker.events.filter((event) => event.type === 'reject')).toEqual([]);
    expect(session.updatesRejected).toBe(0);
    // Each update carries every gradient in fp32: above 4 MB, so NATS had to chunk it.
    expect(session.bytesReceived / session.updatesAccepted).toBeGreaterThan(4 * 1024 * 1024);
    expect(coordinator!.runner.job.state.version).toBeGreaterThanOrEqual(3);
    // Weights go out once per version: fetched by hash over WebSockets, broadcast (and never fetched) over NATS.
    if (harness.name === 'websocket') expect(session.weightFetches).toBe(session.updatesAccepted);
    else expect(session.weightFetches).toBe(0);
  });

  it('keeps an idle worker registered through heartbeats, and drops one that vanished without leaving', async () => {
    const worker = await launch();
    await worker.waitFor((event) => event.type === 'connected');
    coordinator!.runner.pause();
    const session = coordinator!.hub.sessions.get(worker.client.workerId!)!;
    // Six heartbeat periods with no work: still registered.
    await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_MS * 6));
    expect(session.channel).toBeDefined();
    // A second client that vanishes: its connection dies without a leave message.
    const ghost = startWorker(harness);
    await ghost.waitFor((event) => event.type === 'connected');
    const ghostSession = coordinator!.hub.sessions.get(ghost.client.workerId!)!;
    const ghostSocket = (ghost.client as unknown as { socket: { terminate?(): void; close(): void } }).socket;
    // As before the lint: terminate where there is one (a ws socket), and close in any case.
    ghostSocket.terminate?.();
    ghostSocket.close();
    (ghost.client as unknown as { stopping: boolean }).stopping = true;
    await until(() => ghostSession.channel === undefined, SILENCE_MS + 5_000);
    expect(session.channel).toBeDefined();
  });

  it('leaves cleanly: the coordinator drops the worker at once and the open round stops waiting for it', async () => {
    const worker = await launch();
    await worker.waitFor((event) => event.type === 'ack');
    const id = worker.client.workerId!;
    await worker.client.stop('done');
    workers = [];
    await until(() => coordinator!.hub.sessions.get(id)?.channel === undefined, 5_000);
    expect(coordinator!.runner.job.current).toBeUndefined();
  });

  it('reconnects after its carrier restarts and keeps training under the same worker id', async () => {
    const worker = await launch();
    await worker.waitFor((event) => event.type === 'ack');
    const id = worker.client.workerId;
    const before = worker.events.length;
    await harness.restartCarrier();
    await worker.waitFor((event) => event.type === 'connected', 30_000, before);
    expect(worker.client.workerId).toBe(id);
    await worker.waitFor((event) => event.type === 'ack', 30_000, before);
    expect(coordinator!.hub.sessions.get(id!)?.channel?.transport).toBe(harness.name);
  });
});
