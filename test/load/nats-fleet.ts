import { connect, type NatsConnection } from 'nats';
import { isChunk, Reassembler, splitMessage } from '../../shared/codec/chunking.ts';
import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors } from '../../shared/codec/named.ts';
import { pack, unpack } from '../../shared/codec/packr.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { PROTOCOL_VERSION, type Assign, type CoordinatorMessage, type Hello, type Update } from '../../shared/protocol/messages.ts';
import { subjects } from '../../shared/protocol/subjects.ts';
import { createUniform, deriveSeed } from '../../shared/training/random.ts';

/*
 * A fleet of simulated NATS workers, the NATS sibling of fleet.ts: each
 * speaks the real worker protocol on its own subjects (hello, heartbeats,
 * fetchWeights, chunked updates above max_payload), computes nothing, and
 * answers every assignment with gradients drawn from a seeded stream of
 * (seed, worker index, round), so a test can recompute every update the
 * coordinator was sent and the mean it should have applied (fleetGradient).
 * The workers share NATS connections (`connections`, default 8) as a
 * process of many workers would: the subjects, not the sockets, name them.
 */

export interface NatsFleetOptions {
  /** NATS server URL(s). */
  servers: string;
  jobId: string;
  workers: number;
  connections?: number;
  /** Seeds every gradient (fleetGradient). */
  seed: number;
  /** Simulated compute time per assignment. */
  computeMs: number;
  /** Losses every update reports (the model's loss names). */
  losses: Record<string, number>;
  /** Ends once this many rounds have had all their updates sent, or after durationMs. */
  stopAfterRounds: number;
  durationMs: number;
  log?: (line: string) => void;
}

export interface NatsFleetReport {
  updatesSent: number;
  acks: number;
  rejects: Record<string, number>;
  /** Per round: the version it trained, and each worker's samples by the coordinator's worker id. */
  rounds: Map<number, { version: number; samples: Map<string, number> }>;
  /** Worker id -> the fleet index its gradients are drawn with. */
  indexOf: Map<string, number>;
  /** Weights by version, as the coordinator broadcast them. */
  weights: Map<number, NamedArrays>;
  /** Bytes of one encoded update. */
  updateBytes: number;
}

/**
 * The gradient a fleet worker sends for a round: a component common to the
 * round plus the worker's own, uniform in [-1, 1) scaled by 1e-2 (so the mean
 * does not vanish as workers add up, and stays far from any norm limit).
 */
export function fleetGradient(seed: number, workerIndex: number, round: number, shapes: Record<string, number[]>): NamedArrays {
  const common = createUniform(deriveSeed(seed, round));
  const own = createUniform(deriveSeed(seed, round, workerIndex + 1));
  const tensors: NamedArrays = {};
  for (const name of Object.keys(shapes).sort()) {
    const data = new Float32Array(shapes[name].reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = 1e-2 * (common() - 0.5 + 2 * (own() - 0.5));
    tensors[name] = data;
  }
  return tensors;
}

interface FleetState {
  options: NatsFleetOptions;
  report: NatsFleetReport;
  shapes: Record<string, number[]> | undefined;
  /** Rounds every worker has answered. */
  sentPerRound: Map<number, number>;
  assignedPerRound: Map<number, number>;
}

class SimulatedNatsWorker {
  readonly connectionId: string;
  private workerId: string | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly reassembler = new Reassembler(512 * 1024 * 1024);
  private inbox: Promise<void> = Promise.resolve();
  private outbox: Promise<void> = Promise.resolve();
  private nextMessageId = 1;
  private waiting: Assign | undefined;
  private leaving = false;

  constructor(
    private readonly index: number,
    private readonly nc: NatsConnection,
    private readonly state: FleetState,
  ) {
    this.connectionId = `fleet${index}x${Math.random().toString(36).slice(2, 10)}`;
  }

  start(): void {
    const { jobId } = this.state.options;
    this.nc.subscribe(subjects.toWorker(jobId, this.connectionId), {
      callback: (error, message) => {
        if (error) return;
        const frame = message.data;
        this.inbox = this.inbox.then(async () => {
          const bytes = isChunk(frame) ? await this.reassembler.add('coordinator', frame, Date.now()) : frame;
          if (bytes) this.receive(unpack(bytes) as CoordinatorMessage);
        });
      },
    });
    void this.nc.flush().then(() => {
      const hello: Hello = {
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        kind: 'node',
        backend: 'synthetic',
        device: 'nats fleet',
        name: `nats-fleet-${this.index}`,
        jobId,
      };
      this.send(hello);
    });
  }

  leave(): void {
    this.leaving = true;
    clearInterval(this.heartbeat);
    this.send({ type: 'leave', reason: 'fleet done' });
  }

  /** The weights arrived on the broadcast: an assignment waiting for them can go. */
  weightsKnown(): void {
    const assign = this.waiting;
    this.waiting = undefined;
    if (assign) this.compute(assign);
  }

  private send(message: unknown): void {
    const bytes = pack(message).slice();
    const subject = subjects.toCoordinator(this.state.options.jobId, this.connectionId);
    this.outbox = this.outbox.then(async () => {
      for (const frame of await splitMessage(bytes, this.nc.info?.max_payload ?? 1024 * 1024, this.nextMessageId++)) this.nc.publish(subject, frame);
    });
  }

  private receive(message: CoordinatorMessage): void {
    const { report } = this.state;
    switch (message.type) {
      case 'welcome':
        this.workerId = message.workerId;
        report.indexOf.set(message.workerId, this.index);
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.send({ type: 'heartbeat' }), message.heartbeatMs);
        return;
      case 'assign': {
        // An ack that came with the assignment (a large round answers its updates at its close).
        if (message.acknowledges !== undefined) report.acks += 1;
        const round = report.rounds.get(message.round) ?? { version: message.version, samples: new Map() };
        round.samples.set(this.workerId!, message.sampleIndices.length);
        report.rounds.set(message.round, round);
        this.state.assignedPerRound.set(message.round, (this.state.assignedPerRound.get(message.round) ?? 0) + 1);
        if (this.state.shapes) this.compute(message);
        else {
          this.waiting = message;
          this.send({ type: 'fetchWeights', hash: message.weightsHash });
        }
        return;
      }
      case 'weights':
        learnWeights(this.state, message);
        this.weightsKnown();
        return;
      case 'ack':
        report.acks += 1;
        return;
      case 'reject':
      case 'error':
        report.rejects[message.code] = (report.rejects[message.code] ?? 0) + 1;
        return;
      case 'idle':
        return;
    }
  }

  private compute(assign: Assign): void {
    setTimeout(() => {
      if (this.leaving) return;
      const { options, report } = this.state;
      const shapes = this.state.shapes!;
      const grads = fleetGradient(options.seed, this.index, assign.round, shapes);
      const update: Update = {
        type: 'update',
        jobId: assign.jobId,
        round: assign.round,
        version: assign.version,
        weightsHash: assign.weightsHash,
        samples: assign.sampleIndices.length,
        codec: 'f32',
        tensors: getCodec('f32').encode(arraysToTensors(grads, shapes)).slice(),
        losses: options.losses,
        timing: { computeMs: options.computeMs, fetchMs: 0 },
      };
      report.updatesSent += 1;
      report.updateBytes = update.tensors.byteLength;
      this.state.sentPerRound.set(assign.round, (this.state.sentPerRound.get(assign.round) ?? 0) + 1);
      this.send(update);
    }, this.state.options.computeMs);
  }
}

function learnWeights(state: FleetState, message: Extract<CoordinatorMessage, { type: 'weights' }>): void {
  if (state.report.weights.has(message.version)) return;
  const tensors = getCodec(message.codec).decode(message.tensors);
  state.shapes ??= Object.fromEntries(Object.entries(tensors).map(([name, tensor]) => [name, tensor.shape]));
  state.report.weights.set(message.version, Object.fromEntries(Object.entries(tensors).map(([name, tensor]) => [name, Float32Array.from(tensor.data)])));
}

/** Runs the fleet against a coordinator serving `jobId` over NATS; resolves when stopAfterRounds rounds were answered (or durationMs passed). */
export async function runNatsFleet(options: NatsFleetOptions): Promise<NatsFleetReport> {
  const report: NatsFleetReport = { updatesSent: 0, acks: 0, rejects: {}, rounds: new Map(), indexOf: new Map(), weights: new Map(), updateBytes: 0 };
  const state: FleetState = { options, report, shapes: undefined, sentPerRound: new Map(), assignedPerRound: new Map() };
  const connections = await Promise.all(
    Array.from({ length: options.connections ?? 8 }, (_, k) => connect({ servers: options.servers.split(','), name: `nats-fleet-${k}` })),
  );
  // The weights broadcast, read once for every worker.
  const broadcast = new Reassembler(512 * 1024 * 1024);
  let weightsInbox: Promise<void> = Promise.resolve();
  const workers = Array.from({ length: options.workers }, (_, index) => new SimulatedNatsWorker(index, connections[index % connections.length], state));
  connections[0].subscribe(subjects.broadcast(options.jobId), {
    callback: (error, message) => {
      if (error) return;
      const frame = message.data;
      weightsInbox = weightsInbox.then(async () => {
        const bytes = isChunk(frame) ? await broadcast.add('coordinator', frame, Date.now()) : frame;
        if (!bytes) return;
        const decoded = unpack(bytes) as CoordinatorMessage;
        if (decoded.type !== 'weights') return;
        const first = state.shapes === undefined;
        learnWeights(state, decoded);
        if (first) for (const worker of workers) worker.weightsKnown();
      });
    },
  });
  for (const worker of workers) worker.start();
  const done = () =>
    [...state.sentPerRound].filter(([round, sent]) => sent >= (state.assignedPerRound.get(round) ?? Infinity)).length >= options.stopAfterRounds;
  const endAt = Date.now() + options.durationMs;
  let lastLog = 0;
  while (Date.now() < endAt && !done()) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (Date.now() - lastLog > 2000) {
      lastLog = Date.now();
      options.log?.(
        `nats fleet: ${report.indexOf.size}/${options.workers} joined, ${report.updatesSent} updates sent, ${report.acks} acked, rounds ${report.rounds.size}`,
      );
    }
  }
  // A moment for the last round's step and the weights after it.
  const lastVersion = Math.max(...[...report.rounds.values()].map((round) => round.version));
  const until = Date.now() + 15_000;
  while (Date.now() < until && !report.weights.has(lastVersion + 1)) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const worker of workers) worker.leave();
  await Promise.all(connections.map((nc) => nc.flush().catch(() => undefined)));
  await Promise.all(connections.map((nc) => nc.close()));
  return report;
}
