import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { NatsTransport } from '../coordinator/transports/nats.ts';
import { WebSocketTransport } from '../coordinator/transports/websocket.ts';
import { unpack } from '../shared/codec/packr.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { ErrorCode, type TesseraError } from '../shared/protocol/errors.ts';
import type { CoordinatorMessage } from '../shared/protocol/messages.ts';
import type { ChannelHandler, CoordinatorTransport, WorkerChannel } from '../shared/transport/coordinator.ts';
import { MemoryTransport } from '../shared/transport/memory.ts';
import type { TransportClosed, WorkerTransport, WorkerTransportFactory } from '../shared/transport/worker.ts';
import { WorkerClient, type WorkerEvent } from '../shared/worker/client.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { nodeWebSocketTransport } from '../runtime/node/websocket.ts';
import { natsWorkerTransport } from '../worker/nats-transport.ts';
import { freePort, NatsServer } from './helpers/nats-server.ts';

/**
 * One contract, three transports: the in-memory one (milliseconds), a real
 * WebSocket on loopback and a real nats-server. First the transports alone,
 * a worker's end against the coordinator's with a handler that records what
 * it is told; then everything a worker does with its coordinator (register,
 * get work, fetch weights, send updates, keep alive, leave, come back) over
 * each, with the real coordinator, hub and worker client.
 */

const HEARTBEAT_MS = 200;
// Longer than a compute step here (the coordinator shares this process with the worker).
const SILENCE_MS = 3_000;
/** How long NATS, which sees no disconnect, waits for a silent worker in the transports' contract. */
const TRANSPORT_SILENCE_MS = 1_000;
const JOB = 'contract';
const OTHER_JOB = 'contract-other';

/** Where a transport's workers and coordinator meet: a nats-server for NATS, nothing for the others. */
const nats = { server: undefined as NatsServer | undefined };

interface Carrier {
  name: 'memory' | 'websocket' | 'nats';
  /** Whether a broadcast reaches a job's workers (else each fetches the weights by hash). */
  broadcasts: boolean;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A coordinator transport, not started, and a factory of workers' connections to it. */
  pair(): Promise<{ coordinator: CoordinatorTransport; worker: WorkerTransportFactory; stop(): Promise<void> }>;
  /** A factory of connections to where nothing listens. */
  unreachable(): Promise<WorkerTransportFactory>;
}

const carriers: Carrier[] = [
  {
    name: 'memory',
    broadcasts: true,
    async setup() {},
    async teardown() {},
    async pair() {
      const memory = new MemoryTransport();
      return { coordinator: memory, worker: memory.connect, stop: async () => {} };
    },
    async unreachable() {
      return new MemoryTransport().connect;
    },
  },
  {
    name: 'websocket',
    broadcasts: false,
    async setup() {},
    async teardown() {},
    async pair() {
      const server = createServer();
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      return {
        coordinator: new WebSocketTransport(server, { path: '/ws', pingIntervalMs: 60_000 }),
        worker: nodeWebSocketTransport(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`),
        stop: () => closeServer(server),
      };
    },
    async unreachable() {
      return nodeWebSocketTransport(`ws://127.0.0.1:${await freePort()}/ws`);
    },
  },
  {
    name: 'nats',
    broadcasts: true,
    async setup() {
      nats.server = new NatsServer(await freePort());
      await nats.server.start();
    },
    async teardown() {
      await nats.server?.stop();
    },
    async pair() {
      const settings = { servers: [nats.server!.url] };
      return {
        coordinator: new NatsTransport({ settings, heartbeatMs: HEARTBEAT_MS, silenceTimeoutMs: TRANSPORT_SILENCE_MS }),
        worker: natsWorkerTransport(settings),
        stop: async () => {},
      };
    },
    async unreachable() {
      return natsWorkerTransport({ servers: [`nats://127.0.0.1:${await freePort()}`] });
    },
  },
];

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((done) => server.close(() => done()));
}

/** A handler that records what its transport tells it, and sets each new connection's limit. */
class RecordingHandler implements ChannelHandler {
  readonly opened: WorkerChannel[] = [];
  readonly messages: { channel: WorkerChannel; bytes: Uint8Array }[] = [];
  readonly refused: TesseraError[] = [];
  readonly closed: { channel: WorkerChannel; reason: string }[] = [];
  constructor(public limit: number) {}
  onOpen(channel: WorkerChannel): void {
    this.opened.push(channel);
    channel.limitMessages(this.limit);
  }
  onMessage(channel: WorkerChannel, bytes: Uint8Array): void {
    this.messages.push({ channel, bytes });
  }
  onRefused(_channel: WorkerChannel, error: TesseraError): void {
    this.refused.push(error);
  }
  onClose(channel: WorkerChannel, reason: string): void {
    this.closed.push({ channel, reason });
  }
}

/** A worker's connection that records what its transport tells it. */
function connectWorker(factory: WorkerTransportFactory, jobId: string) {
  const transport = factory({ jobId });
  const recorded = { transport, opened: 0, frames: [] as Uint8Array[], closed: [] as TransportClosed[] };
  transport.connect({
    opened: () => (recorded.opened += 1),
    frame: (bytes) => recorded.frames.push(bytes),
    closed: (reason) => recorded.closed.push(reason),
  });
  return recorded;
}

/** Bytes that are not all alike, so a reassembly out of order would show. */
function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (Math.imul(i + seed, 2654435761) >>> 24) & 0xff;
  return bytes;
}

/** Byte for byte, without an element-wise deep equal of megabytes. */
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
const decoded = (frames: Uint8Array[]) => frames.map((frame) => unpack(frame) as CoordinatorMessage);
const idle = (reason: string): CoordinatorMessage => ({ type: 'idle', reason });
/** Long enough for a nats-server on a busy machine; the in-memory transport answers within milliseconds. */
const WAIT = { timeout: 10_000, interval: 5 };

describe.each(carriers)('transport contract: $name', (carrier) => {
  let coordinatorEnd: CoordinatorTransport;
  let workerEnd: WorkerTransportFactory;
  let stop: () => Promise<void>;
  let handler: RecordingHandler;
  const workers: WorkerTransport[] = [];

  beforeAll(() => carrier.setup());
  afterAll(() => carrier.teardown());

  const serve = async (limit = 1024 * 1024) => {
    ({ coordinator: coordinatorEnd, worker: workerEnd, stop } = await carrier.pair());
    handler = new RecordingHandler(limit);
    await coordinatorEnd.start(handler);
    coordinatorEnd.addJob(JOB);
    coordinatorEnd.addJob(OTHER_JOB);
  };

  /** A worker connected and known to the coordinator (over NATS a connection is known from its first message). */
  const joined = async (jobId = JOB) => {
    const known = handler.opened.length;
    const connection = connectWorker(workerEnd, jobId);
    workers.push(connection.transport);
    await vi.waitFor(() => expect(connection.opened).toBe(1), WAIT);
    connection.transport.send(new Uint8Array([0]));
    await vi.waitFor(() => expect(handler.opened).toHaveLength(known + 1), WAIT);
    return { ...connection, channel: handler.opened[known] };
  };

  afterEach(async () => {
    for (const transport of workers.splice(0)) transport.close('test over');
    await coordinatorEnd?.close();
    await stop?.();
  });

  it('opens a connection on the coordinator before its first message; messages arrive whole and in order both ways', async () => {
    await serve();
    const connection = await joined();
    expect(connection.channel.transport).toBe(carrier.name);
    for (let i = 1; i <= 5; i++) connection.transport.send(new Uint8Array([i, i]));
    await vi.waitFor(() => expect(handler.messages.map(({ bytes }) => [...bytes])).toEqual([[0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]), WAIT);
    expect(handler.messages.every(({ channel }) => channel === connection.channel)).toBe(true);
    for (let i = 1; i <= 5; i++) connection.channel.send(idle(`message ${i}`));
    await vi.waitFor(() => expect(decoded(connection.frames)).toEqual([1, 2, 3, 4, 5].map((i) => idle(`message ${i}`))), WAIT);
  });

  it('carries a message of several MB whole both ways (NATS, at 1 MB a frame, chunks it)', async () => {
    await serve(8 * 1024 * 1024);
    const connection = await joined();
    const update = pattern(3 * 1024 * 1024 + 17, 1);
    connection.transport.send(update);
    await vi.waitFor(() => expect(handler.messages).toHaveLength(2), WAIT);
    expect(sameBytes(handler.messages[1].bytes, update)).toBe(true);
    const tensors = pattern(3 * 1024 * 1024 + 5, 2);
    connection.channel.send({ type: 'weights', hash: 'h', version: 1, codec: 'f32', tensors });
    await vi.waitFor(() => expect(connection.frames).toHaveLength(1), WAIT);
    const { tensors: received, ...weights } = decoded(connection.frames)[0] as Extract<CoordinatorMessage, { type: 'weights' }>;
    expect(weights).toEqual({ type: 'weights', hash: 'h', version: 1, codec: 'f32' });
    expect(sameBytes(received, tensors)).toBe(true);
  });

  it('refuses a message above the connection’s limit itself, and never hands it on', async () => {
    await serve(64 * 1024);
    const connection = await joined();
    connection.transport.send(pattern(2 * 1024 * 1024, 3));
    await vi.waitFor(() => expect(handler.refused.length).toBeGreaterThan(0), WAIT);
    expect(handler.refused.every((error) => error.code === ErrorCode.TooLarge)).toBe(true);
    expect(handler.messages.map(({ bytes }) => bytes.byteLength)).toEqual([1]);
  });

  it('broadcasts to every worker of the job once and to no other job’s, where it broadcasts at all', async () => {
    await serve();
    const [first, second, other] = [await joined(), await joined(), await joined(OTHER_JOB)];
    expect(coordinatorEnd.broadcast(JOB, idle('to the job'))).toBe(carrier.broadcasts);
    // A message after it on each: whatever came before it came from the broadcast.
    for (const { channel } of [first, second, other]) channel.send(idle('after'));
    const expected = carrier.broadcasts ? [idle('to the job'), idle('after')] : [idle('after')];
    await vi.waitFor(() => expect([first, second].map(({ frames }) => decoded(frames))).toEqual([expected, expected]), WAIT);
    await vi.waitFor(() => expect(decoded(other.frames)).toEqual([idle('after')]), WAIT);
  });

  it('reports a worker that closed once, as closed (over NATS, which sees no disconnect, once it falls silent)', async () => {
    await serve();
    const connection = await joined();
    connection.transport.close('leaving');
    await vi.waitFor(() => expect(connection.closed).toEqual([{ kind: 'retryable', reason: expect.any(String) }]), WAIT);
    await vi.waitFor(() => expect(handler.closed.map(({ channel }) => channel)).toEqual([connection.channel]), WAIT);
  });

  it('reports a channel the coordinator closed once, and sends on it go nowhere', async () => {
    await serve();
    const connection = await joined();
    connection.channel.close('turned away');
    await vi.waitFor(() => expect(handler.closed).toEqual([{ channel: connection.channel, reason: expect.any(String) }]), WAIT);
    connection.channel.send(idle('too late'));
    connection.channel.close('again');
    // A fresh connection's message comes through after it, proving the late send was not just slow.
    const later = await joined();
    later.channel.send(idle('fresh'));
    await vi.waitFor(() => expect(decoded(later.frames)).toEqual([idle('fresh')]), WAIT);
    expect(decoded(connection.frames)).toEqual([]);
    expect(handler.closed).toHaveLength(1);
  });

  it('ends a connection to where nothing listens as retryable, without opening it', async () => {
    const connection = connectWorker(await carrier.unreachable(), JOB);
    await vi.waitFor(() => expect(connection.closed).toEqual([{ kind: 'retryable', reason: expect.any(String) }]), WAIT);
    expect(connection.opened).toBe(0);
  });

  it('reports every channel closed when the coordinator’s transport closes', async () => {
    await serve();
    const connections = [await joined(), await joined(OTHER_JOB)];
    await coordinatorEnd.close();
    await vi.waitFor(() => expect(new Set(handler.closed.map(({ channel }) => channel))).toEqual(new Set(connections.map(({ channel }) => channel))), WAIT);
    expect(handler.closed).toHaveLength(2);
  });
});

// The worker protocol end to end over each transport.

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-contract-'));
let coordinator: Coordinator | undefined;
let port = 0;
/** The in-memory transport of the coordinator running now: a restarted coordinator listens on a new one. */
let memory: MemoryTransport | undefined;

function coordinatorOptions(extra: object = {}) {
  return {
    port,
    host: '127.0.0.1',
    heartbeatMs: HEARTBEAT_MS,
    silenceTimeoutMs: SILENCE_MS,
    job: {
      id: JOB,
      // Width 112 makes each update about 6 MB: above NATS's 1 MB max_payload, so it must be chunked.
      model: { config: { width: 112, latentDim: 64 } },
      training: { batchSize: 2, roundDeadlineMs: 20_000 },
      output: { dir: outputDir, checkpointEvery: 1000, sampleEvery: 1000, exportEvery: 1000 },
    },
    ...extra,
  };
}

interface Harness {
  carrier: Carrier;
  /** Starts (or restarts on the same address) the coordinator. */
  startCoordinator(): Promise<Coordinator>;
  worker: WorkerTransportFactory;
  /** Restarts what carries the messages: the coordinator for WebSockets and memory, the nats-server for NATS. */
  restartCarrier(): Promise<void>;
}

const restartCoordinator = async (start: () => Promise<Coordinator>) => {
  await coordinator!.close();
  coordinator = await start();
};

const harnesses: Harness[] = [
  {
    carrier: carriers[0],
    async startCoordinator() {
      memory = new MemoryTransport();
      return startCoordinator(coordinatorOptions({ transports: [memory] }));
    },
    worker: (target) => memory!.connect(target),
    restartCarrier: () => restartCoordinator(harnesses[0].startCoordinator),
  },
  {
    carrier: carriers[1],
    startCoordinator: () => startCoordinator(coordinatorOptions()),
    worker: (target) => nodeWebSocketTransport(`ws://127.0.0.1:${port}/ws`)(target),
    restartCarrier: () => restartCoordinator(harnesses[1].startCoordinator),
  },
  {
    carrier: carriers[2],
    startCoordinator: () => startCoordinator(coordinatorOptions({ nats: { servers: [nats.server!.url] } })),
    worker: (target) => natsWorkerTransport({ servers: [nats.server!.url] })(target),
    async restartCarrier() {
      await nats.server!.stop();
      await new Promise((resolve) => setTimeout(resolve, 500));
      await nats.server!.start();
    },
  },
];

/** A worker client that records its events and can wait for one; `vanish` cuts its connection without a leave. */
function startWorker(harness: Harness) {
  const events: WorkerEvent[] = [];
  const waiters = new Set<() => void>();
  const connections: WorkerTransport[] = [];
  const client = new WorkerClient({
    jobId: JOB,
    kind: 'node',
    backend: 'wasm',
    device: 'test',
    name: `contract-${harness.carrier.name}`,
    transport: (target) => {
      const connection = harness.worker(target);
      connections.push(connection);
      return connection;
    },
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
  const vanish = () => {
    connections.at(-1)!.close('vanished');
    // Stopping after the connection is gone: its leave goes nowhere, and it does not come back.
    void client.stop('vanished');
  };
  return { client, events, waitFor, vanish };
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

describe.each(harnesses)('the worker protocol over $carrier.name', (harness) => {
  let workers: ReturnType<typeof startWorker>[] = [];

  beforeAll(async () => {
    port = await freePort();
    await harness.carrier.setup();
  });
  afterEach(async () => {
    await Promise.all(workers.map((worker) => worker.client.stop('test over')));
    workers = [];
    await coordinator?.close();
    coordinator = undefined;
    rmSync(join(outputDir, JOB), { recursive: true, force: true });
  });
  afterAll(async () => {
    await harness.carrier.teardown();
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
    expect(connected).toMatchObject({ jobId: JOB, modelId: 'dcgan' });
    const session = coordinator!.hub.sessions.get(worker.client.workerId!);
    expect(session?.channel?.transport).toBe(harness.carrier.name);
  });

  it('runs rounds: assign, weights once per version, a 6 MB update acknowledged and applied', async () => {
    const worker = await launch();
    await worker.waitFor((event) => event.type === 'ack' && event.round === 2);
    const session = coordinator!.hub.sessions.get(worker.client.workerId!)!;
    expect(session.updatesAccepted).toBeGreaterThanOrEqual(3);
    expect(worker.events.filter((event) => event.type === 'reject')).toEqual([]);
    expect(session.updatesRejected).toBe(0);
    // Each update carries every gradient in fp32: above 4 MB, so NATS had to chunk it.
    expect(session.bytesReceived / session.updatesAccepted).toBeGreaterThan(4 * 1024 * 1024);
    expect(coordinator!.runner.job.state.version).toBeGreaterThanOrEqual(3);
    // Weights go out once per version, unasked: broadcast where the transport broadcasts, else sent just before the
    // assignment on them. The worker takes them from its cache: it never has to fetch.
    expect(session.weightFetches).toBe(0);
  });

  it('keeps an idle worker registered through heartbeats, and drops one that vanished without leaving', async () => {
    const worker = await launch();
    await worker.waitFor((event) => event.type === 'connected');
    coordinator!.runner.pause();
    const session = coordinator!.hub.sessions.get(worker.client.workerId!)!;
    // Six heartbeat periods with no work: still registered.
    await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_MS * 6));
    expect(session.channel).toBeDefined();
    // A second client that vanishes: its connection ends without a leave message.
    const ghost = startWorker(harness);
    await ghost.waitFor((event) => event.type === 'connected');
    const ghostSession = coordinator!.hub.sessions.get(ghost.client.workerId!)!;
    ghost.vanish();
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
    expect(coordinator!.hub.sessions.get(id!)?.channel?.transport).toBe(harness.carrier.name);
  });
});
