import WebSocket from 'ws';
import { getCodec } from '../../shared/codec/index.ts';
import { pack, unpack } from '../../shared/codec/packr.ts';
import type { NamedTensors } from '../../shared/codec/types.ts';
import { PROTOCOL_VERSION, type Assign, type CoordinatorMessage, type Hello, type Update, type Welcome } from '../../shared/protocol/messages.ts';
import { CoordinatorSampler, type MetricsSample } from './coordinator-metrics.ts';
import { percentiles, type Percentiles } from './stats.ts';

/*
 * A fleet of simulated WebSocket workers: each joins (hello), takes its
 * assignments, fetches the weights once (to learn the tensors' names and
 * shapes), answers every assignment with a valid update of small random
 * gradients, and leaves at the end. What it measures is the coordinator:
 * joins per second, send-to-ack latency, refusals, and its memory.
 */

export interface FleetOptions {
  /** The coordinator's worker endpoint, ws://HOST:PORT/ws. */
  url: string;
  workers: number;
  /** Joins are spread evenly over this long. */
  rampMs: number;
  /** From the first join until every worker leaves. */
  durationMs: number;
  /** Simulated compute time per assignment. */
  computeMs: number;
  /** Each compute sleeps computeMs x (1 - jitter/2 + jitter x uniform): 1 (the default) spreads it over [0.5, 1.5) x computeMs, 0 sleeps exactly computeMs. */
  computeJitter?: number;
  /** Fetch the weights of every new version before computing, as a real worker does (default: once, to learn the tensors). */
  fetchEveryVersion?: boolean;
  /** End once this many rounds have had every update sent (besides durationMs, whichever comes first). */
  stopAfterRounds?: number;
  token?: string;
  jobId?: string;
  /** The coordinator's /metrics, for its memory over time (derived from `url` when absent). */
  metricsUrl?: string;
  sampleEveryMs?: number;
  /** Progress lines while it runs. */
  log?: (line: string) => void;
}

export interface FleetReport {
  workers: number;
  joined: number;
  /** Welcomes per second over the ramp. */
  joinRatePerSecond: number;
  /** Connect to welcome. */
  joinLatencyMs: Percentiles;
  updatesSent: number;
  acks: number;
  /** Send to ack. */
  updateLatencyMs: Percentiles;
  /** Rejected updates and messages, by error code. */
  rejects: Record<string, number>;
  /** Fatal refusals (an `error` message: wrong token, unknown job). */
  refused: number;
  /** Connections that failed or that the coordinator closed while the worker meant to stay. */
  dropped: number;
  weightFetches: number;
  /** Weights the coordinator sent unasked, before an assignment on them. */
  weightPushes: number;
  /** Distinct rounds the fleet was assigned work in. */
  rounds: number;
  /** Per round, in round order: when its assignments arrived and how long the slowest worker computed. */
  roundTimings: RoundTiming[];
  /** Bytes of one encoded update (every update of a run is the same size) and of one weights message's tensors. */
  updateBytes: number;
  weightsBytes: number;
  memory: MetricsSample[];
  durationMs: number;
}

/** One round as the fleet saw it (times from performance.now()). */
export interface RoundTiming {
  round: number;
  /** Assignments received, the first's and the last's arrival. */
  assigned: number;
  firstAssignAt: number;
  lastAssignAt: number;
  /** Updates sent, and the longest simulated compute among them (the sleep as it ran, timer lateness included). */
  updatesSent: number;
  slowestComputeMs: number;
  /** When the last worker started computing (its weights in hand), and when the last update was sent. */
  lastComputeStartAt: number;
  lastUpdateAt: number;
}

/** Small random gradients in the shapes of the weights, encoded once and reused: the coordinator checks shape, finiteness and norm, not values. */
class UpdatePayloads {
  private readonly byCodec = new Map<string, Uint8Array[]>();
  private next = 0;

  constructor(
    private readonly shapes: Record<string, number[]>,
    private readonly variants = 8,
  ) {}

  take(codecId: string): Uint8Array {
    let list = this.byCodec.get(codecId);
    if (!list) {
      const codec = getCodec(codecId);
      list = Array.from({ length: this.variants }, () => {
        const tensors: NamedTensors = {};
        for (const [name, shape] of Object.entries(this.shapes)) {
          const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
          for (let i = 0; i < data.length; i++) data[i] = (Math.random() - 0.5) * 2e-3;
          tensors[name] = { dtype: 'float32', shape, data };
        }
        // slice(): pack() hands out a view of its shared buffer.
        return codec.encode(tensors).slice();
      });
      this.byCodec.set(codecId, list);
    }
    this.next = (this.next + 1) % list.length;
    return list[this.next];
  }
}

/**
 * Each round's update messages, packed once per payload variant: every simulated worker of a round sends the same fields
 * (round, version, weights, samples, codec) around one of a few payloads, and packing 512 copies of them a round took
 * the coordinator's shared cores. The coordinator still reads and decodes each message it gets.
 */
class PackedUpdates {
  private fields = '';
  private readonly byPayload = new Map<Uint8Array, Uint8Array>();

  of(update: Update): Uint8Array {
    const fields = JSON.stringify([update.jobId, update.round, update.version, update.weightsHash, update.samples, update.codec]);
    if (fields !== this.fields) {
      this.fields = fields;
      this.byPayload.clear();
    }
    let packed = this.byPayload.get(update.tensors);
    if (!packed) {
      // slice(): pack() hands out a view of its shared buffer.
      packed = pack(update).slice();
      this.byPayload.set(update.tensors, packed);
    }
    return packed;
  }
}

interface Counters {
  joinLatencies: number[];
  joinedAt: number[];
  updateLatencies: number[];
  updatesSent: number;
  rejects: Record<string, number>;
  refused: number;
  dropped: number;
  weightFetches: number;
  weightPushes: number;
  rounds: Set<number>;
  roundTimings: Map<number, RoundTiming>;
  payloads: UpdatePayloads | undefined;
  packed: PackedUpdates;
  updateBytes: number;
  weightsBytes: number;
}

/** One simulated worker: a socket and the protocol, no tensors computed. */
class SimulatedWorker {
  private socket: WebSocket | undefined;
  private welcome: Welcome | undefined;
  private leaving = false;
  private fetched = false;
  /** The weights version this worker holds (fetchEveryVersion). */
  private heldHash: string | undefined;
  private waitingForWeights: Assign | undefined;
  private readonly sentAt = new Map<number, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(
    private readonly index: number,
    private readonly options: FleetOptions,
    private readonly counters: Counters,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
  }

  start(): void {
    const connectAt = performance.now();
    // A zero masking key (ws then skips the XOR): the simulated workers share the coordinator's cores, where masking 512
    // updates a round took CPU the coordinator's reading competes for; the coordinator unmasks every frame all the same.
    const socket = new WebSocket(this.options.url, { maxPayload: 512 * 1024 * 1024, generateMask: (mask) => mask.fill(0) });
    this.socket = socket;
    socket.binaryType = 'nodebuffer';
    socket.on('open', () => {
      const hello: Hello = { type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'synthetic', device: 'load test', name: `fleet-${this.index}` };
      if (this.options.jobId) hello.jobId = this.options.jobId;
      if (this.options.token) hello.token = this.options.token;
      this.send(hello);
    });
    socket.on('message', (data: Buffer) => this.receive(unpack(data) as CoordinatorMessage, connectAt));
    socket.on('error', () => {
      /* close follows */
    });
    socket.on('close', () => {
      clearInterval(this.heartbeat);
      if (!this.leaving) this.counters.dropped += 1;
      this.markClosed();
    });
  }

  leave(): void {
    if (this.leaving) return;
    this.leaving = true;
    clearInterval(this.heartbeat);
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.send({ type: 'leave', reason: 'load test done' });
      this.socket.close(1000, 'done');
    } else {
      this.socket?.terminate();
    }
  }

  private send(message: unknown): void {
    this.sendPacked(pack(message));
  }

  private sendPacked(bytes: Uint8Array): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(bytes);
  }

  private receive(message: CoordinatorMessage, connectAt: number): void {
    switch (message.type) {
      case 'welcome':
        this.welcome = message;
        this.counters.joinLatencies.push(performance.now() - connectAt);
        this.counters.joinedAt.push(performance.now());
        this.heartbeat = setInterval(() => this.send({ type: 'heartbeat' }), message.heartbeatMs);
        return;
      case 'assign': {
        if (message.acknowledges !== undefined) this.acknowledged(message.acknowledges);
        this.counters.rounds.add(message.round);
        const now = performance.now();
        const timing = this.counters.roundTimings.get(message.round);
        if (timing) {
          timing.assigned += 1;
          timing.lastAssignAt = now;
        } else {
          this.counters.roundTimings.set(message.round, {
            round: message.round,
            assigned: 1,
            firstAssignAt: now,
            lastAssignAt: now,
            updatesSent: 0,
            slowestComputeMs: 0,
            lastComputeStartAt: now,
            lastUpdateAt: now,
          });
        }
        if (this.options.fetchEveryVersion && this.fetched && this.heldHash !== message.weightsHash) {
          this.waitingForWeights = message;
          this.counters.weightFetches += 1;
          this.send({ type: 'fetchWeights', hash: message.weightsHash });
        } else if (this.fetched && this.counters.payloads) {
          this.compute(message);
        } else {
          // The first assignment: fetch the weights once, as a real worker does, to learn the tensors.
          this.waitingForWeights = message;
          if (!this.fetched) {
            this.fetched = true;
            this.counters.weightFetches += 1;
            this.send({ type: 'fetchWeights', hash: message.weightsHash });
          }
        }
        return;
      }
      case 'weights': {
        if (!this.waitingForWeights) this.counters.weightPushes += 1;
        // Held: a later assignment on these weights computes at once, as a real worker's does.
        this.fetched = true;
        this.heldHash = message.hash;
        this.counters.weightsBytes = message.tensors.byteLength;
        if (!this.counters.payloads) {
          const tensors = getCodec(message.codec).decode(message.tensors);
          this.counters.payloads = new UpdatePayloads(Object.fromEntries(Object.entries(tensors).map(([name, tensor]) => [name, tensor.shape])));
        }
        const assign = this.waitingForWeights;
        this.waitingForWeights = undefined;
        if (assign) this.compute(assign);
        return;
      }
      case 'ack':
        this.acknowledged(message.round);
        return;
      case 'reject':
        this.counters.rejects[message.code] = (this.counters.rejects[message.code] ?? 0) + 1;
        return;
      case 'error':
        this.counters.refused += 1;
        this.counters.rejects[message.code] = (this.counters.rejects[message.code] ?? 0) + 1;
        return;
      case 'idle':
        return;
    }
  }

  /** An ack, alone or with an assignment: the update's latency, from its sending to its answer. */
  private acknowledged(round: number): void {
    const sentAt = this.sentAt.get(round);
    this.sentAt.delete(round);
    if (sentAt !== undefined) this.counters.updateLatencies.push(performance.now() - sentAt);
  }

  private compute(assign: Assign): void {
    const jitter = this.options.computeJitter ?? 1;
    const sleepStartedAt = performance.now();
    const started = this.counters.roundTimings.get(assign.round);
    if (started) started.lastComputeStartAt = Math.max(started.lastComputeStartAt, sleepStartedAt);
    setTimeout(
      () => {
        if (this.leaving || !this.welcome) return;
        const timing = this.counters.roundTimings.get(assign.round);
        if (timing) {
          timing.updatesSent += 1;
          timing.slowestComputeMs = Math.max(timing.slowestComputeMs, performance.now() - sleepStartedAt);
          timing.lastUpdateAt = performance.now();
        }
        const update: Update = {
          type: 'update',
          jobId: assign.jobId,
          round: assign.round,
          version: assign.version,
          weightsHash: assign.weightsHash,
          samples: assign.sampleIndices.length,
          codec: assign.codec,
          tensors: this.counters.payloads!.take(assign.codec),
          losses: { d: 1.386, g: 0.693 },
          timing: { computeMs: this.options.computeMs, fetchMs: 0 },
        };
        this.sentAt.set(assign.round, performance.now());
        this.counters.updatesSent += 1;
        this.counters.updateBytes = update.tensors.byteLength;
        this.sendPacked(this.counters.packed.of(update));
      },
      this.options.computeMs * (1 - jitter / 2 + jitter * Math.random()),
    );
  }
}

/** Resolves at `endAt`, or earlier once stopAfterRounds rounds have had all their updates sent. */
async function untilDone(options: FleetOptions, counters: Counters, endAt: number): Promise<void> {
  const complete = () => [...counters.roundTimings.values()].filter((timing) => timing.assigned > 0 && timing.updatesSent >= timing.assigned).length;
  while (performance.now() < endAt) {
    if (options.stopAfterRounds !== undefined && complete() >= options.stopAfterRounds) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, endAt - performance.now()))));
  }
}

/** Runs the fleet against a coordinator and reports what it measured; loopback or the operator's own test hosts only. */
export async function runFleet(options: FleetOptions): Promise<FleetReport> {
  const log = options.log ?? (() => undefined);
  const metricsUrl = options.metricsUrl ?? `${options.url.replace(/^ws/, 'http').replace(/\/ws$/, '')}/metrics`;
  const sampler = new CoordinatorSampler(metricsUrl, options.sampleEveryMs ?? 1000);
  const counters: Counters = {
    joinLatencies: [],
    joinedAt: [],
    updateLatencies: [],
    updatesSent: 0,
    rejects: {},
    refused: 0,
    dropped: 0,
    weightFetches: 0,
    weightPushes: 0,
    rounds: new Set(),
    roundTimings: new Map(),
    payloads: undefined,
    packed: new PackedUpdates(),
    updateBytes: 0,
    weightsBytes: 0,
  };
  const workers = Array.from({ length: options.workers }, (_, index) => new SimulatedWorker(index, options, counters));

  await sampler.sample('baseline');
  sampler.start();
  const startedAt = performance.now();
  const progress = setInterval(() => {
    const memory = sampler.latest;
    log(
      `t=${((performance.now() - startedAt) / 1000).toFixed(1).padStart(5)} s  joined ${String(counters.joinLatencies.length).padStart(5)}/${options.workers}` +
        `  updates ${counters.updatesSent} acked ${counters.updateLatencies.length}  rejects ${Object.values(counters.rejects).reduce((a, b) => a + b, 0)}` +
        `  dropped ${counters.dropped}  rounds ${counters.rounds.size}  coordinator RSS ${memory ? (memory.rssBytes / 2 ** 20).toFixed(0) : '?'} MB`,
    );
  }, 1000);

  // The ramp: one join every rampMs / workers.
  const gap = options.workers > 1 ? options.rampMs / (options.workers - 1) : 0;
  for (let index = 0; index < workers.length; index++) {
    const due = startedAt + index * gap;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    workers[index].start();
  }
  const rampEndedAt = performance.now();
  await untilDone(options, counters, startedAt + options.durationMs);

  for (const worker of workers) worker.leave();
  await Promise.race([Promise.all(workers.map((worker) => worker.closed)), new Promise((resolve) => setTimeout(resolve, 10_000))]);
  clearInterval(progress);
  sampler.stop();
  // A moment for the coordinator to let go of what the workers held.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await sampler.sample('end');

  const joinWindowMs = Math.max(1, (counters.joinedAt.length > 0 ? Math.max(...counters.joinedAt) : rampEndedAt) - startedAt);
  return {
    workers: options.workers,
    joined: counters.joinLatencies.length,
    joinRatePerSecond: counters.joinLatencies.length / (joinWindowMs / 1000),
    joinLatencyMs: percentiles(counters.joinLatencies),
    updatesSent: counters.updatesSent,
    acks: counters.updateLatencies.length,
    updateLatencyMs: percentiles(counters.updateLatencies),
    rejects: counters.rejects,
    refused: counters.refused,
    dropped: counters.dropped,
    weightFetches: counters.weightFetches,
    weightPushes: counters.weightPushes,
    rounds: counters.rounds.size,
    roundTimings: [...counters.roundTimings.values()].sort((a, b) => a.round - b.round),
    updateBytes: counters.updateBytes,
    weightsBytes: counters.weightsBytes,
    memory: sampler.samples,
    durationMs: performance.now() - startedAt,
  };
}

/** The report as lines for a terminal. */
export function formatReport(report: FleetReport): string[] {
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const spread = (p: Percentiles) => `p50 ${ms(p.p50)}, p90 ${ms(p.p90)}, p99 ${ms(p.p99)}, max ${ms(p.max)} (n=${p.count})`;
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  const baseline = report.memory[0];
  const peak = report.memory.reduce((max, sample) => (sample.rssBytes > max.rssBytes ? sample : max), baseline);
  const end = report.memory.at(-1)!;
  const rejects =
    Object.entries(report.rejects)
      .map(([code, count]) => `${code} ${count}`)
      .join(', ') || 'none';
  return [
    `workers: ${report.joined}/${report.workers} joined, ${report.joinRatePerSecond.toFixed(1)} joins/s; join latency ${spread(report.joinLatencyMs)}`,
    `updates: ${report.updatesSent} sent, ${report.acks} acknowledged in ${report.rounds} rounds; send-to-ack latency ${spread(report.updateLatencyMs)}`,
    `refusals: rejects ${rejects}; fatal ${report.refused}; connections dropped ${report.dropped}; weight fetches ${report.weightFetches}, pushes ${report.weightPushes}`,
    `coordinator RSS: ${mb(baseline.rssBytes)} before, peak ${mb(peak.rssBytes)} at ${(peak.atMs / 1000).toFixed(1)} s (+${mb(peak.rssBytes - baseline.rssBytes)}), ${mb(end.rssBytes)} after all left; heap used ${mb(baseline.heapUsedBytes)} -> ${mb(end.heapUsedBytes)}`,
    `memory over time: ${report.memory.map((sample) => `${(sample.atMs / 1000).toFixed(0)}s ${(sample.rssBytes / 2 ** 20).toFixed(0)}`).join(' | ')} (MB)`,
  ];
}
