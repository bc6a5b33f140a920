import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import WebSocket from 'ws';
import { getCodec } from '../../shared/codec/index.ts';
import { pack, unpack } from '../../shared/codec/packr.ts';
import { PROTOCOL_VERSION, type Assign, type CoordinatorMessage } from '../../shared/protocol/messages.ts';
import { updateFor } from '../../coordinator/test-fixtures.ts';
import { startScript, type Started } from './processes.ts';

/**
 * What the door tests (fuzz, amplification, exhaustion) share: a real
 * coordinator process to measure, its resident memory, /health latency
 * while it is under attack, and a raw protocol client that can send any
 * bytes at all.
 */

export interface CoordinatorProcess {
  started: Started;
  pid: number;
  url: string;
  wsUrl: string;
}

/** A tiny DCGAN job: rounds take milliseconds, so the door's work dominates. */
export function tinyJob(outputDir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'door',
    model: { id: 'dcgan', config: { width: 4, latentDim: 8 } },
    training: { batchSize: 2, minWorkers: 1, roundDeadlineMs: 5_000 },
    // No quality scoring: its thread (tfjs and the evaluator, ~150 MB) would count in the RSS these tests bound.
    output: { dir: outputDir, checkpointEvery: 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000, evalEvery: 0 },
    ...extra,
  };
}

/** Starts coordinator/main.ts on a free port with this job and door limits; resolves once it listens. */
export async function startCoordinatorProcess(
  outputDir: string,
  job: Record<string, unknown>,
  limits: Record<string, number> = {},
): Promise<CoordinatorProcess> {
  const configPath = join(outputDir, 'job.json');
  writeFileSync(configPath, JSON.stringify(job));
  const started = startScript('coordinator/main.ts', [
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--config',
    configPath,
    '--admin-token',
    'door-admin-token-for-tests',
    '--door-limits',
    JSON.stringify(limits),
  ]);
  const [, url] = await started.waitFor(/tessera coordinator on (http:\/\/[\d.]+:\d+)/, 60_000);
  return { started, pid: started.pid, url, wsUrl: `${url.replace('http', 'ws')}/ws` };
}

/** Resident memory of a process in bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** Runs `probe` back to back (with `gapMs` between) until stopped; returns the largest value it gave. */
function sampler(probe: () => Promise<number> | number, gapMs: number): { stop(): Promise<{ max: number; count: number }> } {
  let running = true;
  let max = 0;
  let count = 0;
  const loop = (async () => {
    while (running) {
      max = Math.max(max, await probe());
      count += 1;
      await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { max, count };
    },
  };
}

/**
 * Asks /health again and again from a thread of its own, so what this process
 * does meanwhile (building a 64 MB frame) does not count as the coordinator's
 * latency. `measure()` starts a window; `read()` gives the answer times in ms
 * since then, slowest first (a failed request counts as Infinity).
 */
export class HealthWatcher {
  private constructor(private readonly worker: Worker) {}

  /** Starts asking; resolves once the first answer came (a thread and its fetch take a moment to start). */
  static async start(url: string, gapMs = 10): Promise<HealthWatcher> {
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
      let running = true, times = [], ready = false;
      parentPort.on('message', (command) => {
        if (command === 'read') parentPort.postMessage(times.slice().sort((a, b) => b - a));
        if (command === 'measure') { times = []; parentPort.postMessage('measuring'); }
        if (command === 'stop') running = false;
      });
      (async () => {
        while (running) {
          const started = performance.now();
          let elapsed;
          try {
            const response = await fetch(workerData.url + '/health', { signal: AbortSignal.timeout(5000) });
            await response.arrayBuffer();
            elapsed = response.ok ? performance.now() - started : Infinity;
          } catch { elapsed = Infinity; }
          if (!ready) { ready = true; parentPort.postMessage('ready'); }
          times.push(elapsed);
          await new Promise((resolve) => setTimeout(resolve, workerData.gapMs));
        }
      })();`,
      { eval: true, workerData: { url, gapMs } },
    );
    const watcher = new HealthWatcher(worker);
    await watcher.reply('ready', undefined);
    return watcher;
  }

  /** Forgets what was measured so far. */
  async measure(): Promise<void> {
    await this.reply('measuring', 'measure');
  }

  /** The answer times since measure(), slowest first. */
  read(): Promise<number[]> {
    return this.reply((message) => Array.isArray(message), 'read');
  }

  async close(): Promise<void> {
    this.worker.postMessage('stop');
    await this.worker.terminate();
  }

  private reply<T>(expected: string | ((message: unknown) => boolean), command: string | undefined): Promise<T> {
    return new Promise((resolve) => {
      const listener = (message: unknown) => {
        if (typeof expected === 'string' ? message !== expected : !expected(message)) return;
        this.worker.off('message', listener);
        resolve(message as T);
      };
      this.worker.on('message', listener);
      if (command) this.worker.postMessage(command);
    });
  }
}

/** Samples a process's resident memory; `stop` gives the largest in bytes. */
export function watchRss(pid: number, gapMs = 10) {
  return sampler(() => rssBytes(pid), gapMs);
}

/** A WebSocket to the coordinator that sends whatever bytes it is given and keeps every message it gets. */
export class RawClient {
  readonly messages: CoordinatorMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  /**
   * When the coordinator's close frame arrived, and its code: a refusal is
   * that frame, while the connection itself may take longer to close (the
   * client still flushing what it wrote).
   */
  readonly closeFrame: Promise<{ code: number; at: number }>;
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<(message: CoordinatorMessage) => void>();
  private isClosed = false;
  /** True once this side closed the connection. */
  closedByUs = false;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      const message = unpack(new Uint8Array(data)) as CoordinatorMessage;
      this.messages.push(message);
      for (const listener of this.listeners) listener(message);
      for (const waiter of this.waiters) waiter();
    });
    // Writes into a socket the coordinator cut are expected here.
    socket.on('error', () => {});
    // ws's receiver tells of a close frame as it parses it ('conclude'); the socket's close comes after the handshake.
    const receiver = (socket as unknown as { _receiver: import('node:events').EventEmitter })._receiver;
    let frameArrived: (frame: { code: number; at: number }) => void = () => {};
    this.closeFrame = new Promise((resolve) => (frameArrived = resolve));
    receiver.once('conclude', (code: number) => frameArrived({ code, at: performance.now() }));
    this.closed = new Promise((resolve) =>
      socket.once('close', (code, reason) => {
        this.isClosed = true;
        for (const waiter of this.waiters) waiter();
        const at = performance.now();
        // Closed without a close frame (1006): the frame's promise settles too, with that code.
        frameArrived({ code, at });
        resolve({ code, reason: reason.toString(), at });
      }),
    );
  }

  static async connect(wsUrl: string): Promise<RawClient> {
    const socket = new WebSocket(wsUrl);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  send(bytes: Uint8Array): void {
    this.socket.send(bytes);
  }

  /**
   * Writes one binary frame with this payload straight to the socket, with a
   * zero mask so the payload goes as it is, in chunks as the socket drains:
   * as a hostile client would stream it, and without blocking this process.
   * Resolves when all is written or the coordinator cut the socket.
   */
  async writeFrame(payload: Uint8Array): Promise<void> {
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.byteLength), 2);
    // Bytes 10-13: the mask key, zero.
    const raw = (this.socket as unknown as { _socket: import('node:net').Socket })._socket;
    raw.write(header);
    const chunk = 256 * 1024;
    for (let offset = 0; offset < payload.byteLength && raw.writable && !raw.destroyed; offset += chunk) {
      if (!raw.write(payload.subarray(offset, offset + chunk))) {
        await new Promise<void>((resolve) => {
          raw.once('drain', resolve);
          raw.once('close', resolve);
        });
      } else {
        // Loopback takes all of it at once; without a turn of the event loop between chunks this process would
        // not read the coordinator's answer until it had written every byte.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  /** The first message from index `from` on that matches, or null once the socket closed or the time is up. */
  async next(predicate: (message: CoordinatorMessage) => boolean, timeoutMs: number, from = 0): Promise<CoordinatorMessage | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(predicate);
      if (found) return found;
      if (this.isClosed || performance.now() > deadline) return null;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(1, deadline - performance.now()));
        this.waiters.add(wake);
      });
    }
  }

  /** Calls `listener` with every message from now on. */
  onMessage(listener: (message: CoordinatorMessage) => void): void {
    this.listeners.add(listener);
  }

  /** Cuts the connection. */
  close(): void {
    this.closedByUs = true;
    this.socket.terminate();
  }
}

/** The f32 codec's bytes of zero gradients for every tensor of these weights: a valid update's tensors. */
export function zeroGradients(weights: Uint8Array): Uint8Array {
  const decoded = getCodec('f32').decode(weights);
  const zeros = Object.fromEntries(
    Object.entries(decoded).map(([name, tensor]) => [name, { dtype: 'float32' as const, shape: tensor.shape, data: new Float32Array(tensor.data.length) }]),
  );
  return getCodec('f32').encode(zeros).slice();
}

/** A welcomed raw worker, with its first assignment and the weights it names. */
export async function joinAsWorker(wsUrl: string, name = 'raw'): Promise<{ client: RawClient; assign: Assign; weights: Uint8Array }> {
  const client = await RawClient.connect(wsUrl);
  client.send(pack({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test', name }).slice());
  const assign = await client.next((message) => message.type === 'assign', 15_000);
  if (assign?.type !== 'assign') throw new Error(`no assignment for ${name}`);
  client.send(pack({ type: 'fetchWeights', hash: assign.weightsHash }).slice());
  const weights = await client.next((message) => message.type === 'weights', 15_000);
  if (weights?.type !== 'weights') throw new Error(`no weights for ${name}`);
  return { client, assign, weights: weights.tensors };
}

/** A valid update for an assignment with these tensors (zero gradients of the job's shapes leave the weights as they are). */
export function zeroUpdate(assign: Assign, tensors: Uint8Array, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return updateFor(assign, { tensors, ...overrides });
}

/**
 * A worker that answers every assignment at once with zero gradients, so
 * rounds (and their events) come as fast as the coordinator closes them.
 * `stop` ends it and gives the number of rounds it answered.
 */
export async function busyWorker(wsUrl: string): Promise<{ stop(): Promise<number> }> {
  const { client, assign, weights } = await joinAsWorker(wsUrl, 'busy');
  const tensors = zeroGradients(weights);
  let running = true;
  let answered = 0;
  const loop = (async () => {
    let current: Assign = assign;
    while (running && client.isOpen) {
      const from = client.messages.length;
      client.send(pack(zeroUpdate(current, tensors)).slice());
      answered += 1;
      const next = await client.next((message) => message.type === 'assign' && message.round > current.round, 10_000, from);
      if (next?.type !== 'assign') break;
      current = next;
      // Keep the message list short: a long run would hold every message otherwise.
      client.messages.splice(0, client.messages.length);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      client.close();
      return answered;
    },
  };
}
