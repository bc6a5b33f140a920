import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, unpack } from '../../shared/codec/packr.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { loadMnist } from '../../shared/data/mnist.ts';
import { getModel } from '../../shared/models/registry.ts';
import { createUniform } from '../../shared/training/random.ts';
import { MemoryTransport } from '../../shared/transport/memory.ts';
import type { WorkerTransportFactory } from '../../shared/transport/worker.ts';
import { WorkerClient } from '../../shared/worker/client.ts';
import { serveTransports } from '../../coordinator/transports/serve.ts';
import { WebSocketTransport } from '../../coordinator/transports/websocket.ts';
import { nodeWebSocketTransport } from '../../runtime/node/websocket.ts';
import { parseJobConfig } from '../../coordinator/config.ts';
import { Hub } from '../../coordinator/hub.ts';
import { Job } from '../../coordinator/job/job.ts';
import { JobRunner } from '../../coordinator/job/runner.ts';
import { rewritingTransport } from '../helpers/rewriting-transport.ts';
import type { Attack } from './attacks.ts';

export interface ScenarioOptions {
  /** The hostile worker's behaviour; none for a clean run (four honest workers). */
  attack?: Attack;
  /** training.aggregator. */
  rule: string;
  rounds: number;
  seed?: number;
  /** training.verification.duplicateShare. */
  duplicateShare?: number;
  /** Held-out examples the loss is measured on. */
  evalExamples?: number;
  /** Training settings on top of the scenario's (a clean baseline for an attack that needs some, e.g. throughput batching). */
  training?: Record<string, unknown>;
  /** How workers reach the hub: the in-memory transport (default), or real WebSockets on loopback through the coordinator's transport. */
  transport?: 'memory' | 'websocket';
}

export interface ScenarioResult {
  attack: string;
  rule: string;
  /** The training settings beyond the scenario's own, as `key=value` (empty for none): runs compare with a clean run of the same. */
  setting: string;
  rounds: number;
  /** The model's losses on held-out examples, averaged over the weights of the last EVAL_POINTS evaluation points. */
  heldOut: Record<string, number>;
  /** The sum of those losses: what the table compares with a clean run. */
  heldOutLoss: number;
  /** Round in which the hostile worker was first quarantined; null if never. */
  quarantinedAt: number | null;
  /** Honest workers that were ever quarantined (must stay empty). */
  honestQuarantined: string[];
  /** Verification outcomes over the run. */
  verdicts: Record<string, number>;
  seconds: number;
}

const HONEST = ['honest-1', 'honest-2', 'honest-3'];
/**
 * A GAN's losses swing from step to step as the two networks chase each
 * other: one step's value would make the comparison with a clean run a coin
 * toss. Averaged over 5 points spread across the last ~15% of the run.
 */
const EVAL_POINTS = 5;
const HOSTILE = 'hostile';
/**
 * DCGAN narrowed to 8 base channels (18 k weights): a round of 4 workers costs ~45 ms of CPU on wasm. Without the
 * default recipe's norms: the targets (held-out loss within 1.5x of clean) were set and measured on the plain
 * architecture, whose held-out losses move within 50 rounds; spectral norm keeps D's loss near chance that early, so
 * the ratio would say little either way.
 */
const MODEL = { id: 'dcgan', config: { width: 8, latentDim: 16, generatorNorm: 'none', discriminatorNorm: 'none' } };

/**
 * One run: the real Job, JobRunner and Hub in this process, four real
 * WorkerClients (each with its own trainer) over the in-memory transport,
 * which packs every message to bytes (or real WebSockets on loopback), one of
 * them hostile when an attack is given. Waits
 * for `rounds` training steps, then measures the model's loss on held-out
 * examples. Seeded: the data, the noise and the duplicate plan replay; the
 * rounds' contents replay too except under throughput batching, which
 * follows measured compute times.
 */
export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const seed = options.seed ?? 1;
  const extra = { ...options.training, ...options.attack?.training };
  const outputDir = mkdtempSync(join(tmpdir(), 'tessera-attack-'));
  const config = parseJobConfig({
    id: 'attack',
    model: MODEL,
    training: {
      batchSize: 8,
      batching: 'equal',
      minWorkers: 4,
      rounds: options.rounds,
      seed,
      deadline: 'fixed',
      roundDeadlineMs: 60_000,
      aggregator: options.rule,
      verification: { duplicateShare: options.duplicateShare ?? 0.05 },
      ...extra,
    },
    // 1e-3 rather than DCGAN's 2e-4: the small model visibly learns within a few hundred rounds. Adam's betas of the
    // DCGAN paper (0.5, 0.999), as the targets were measured with: the recipe's (0, 0.99) left the constant attack
    // under centered-clip at 1.63x the clean loss (target 1.5x) in 50 rounds; not yet re-measured at full length.
    optimizers: {
      generator: { learningRate: 1e-3, beta1: 0.5, beta2: 0.999 },
      discriminator: { learningRate: 1e-3, beta1: 0.5, beta2: 0.999 },
    },
    output: { dir: outputDir, checkpointEvery: 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000, evalEvery: 0 },
  });
  const spec = getModel(config.model.id);
  const samplingTrainer = spec.createTrainer(spec.parseConfig(config.model.config));
  const dataset = loadMnist();
  const job = new Job(config, samplingTrainer.shapes, Job.initialState(spec, samplingTrainer.initialWeights(seed), config.dataset.shards), dataset.count);
  const runner = new JobRunner(job, samplingTrainer, Date.now, { random: createUniform(seed ^ 0x5eed) });
  const hub = new Hub({ defaultJobId: config.id, heartbeatMs: 600_000 });
  hub.addRunner(runner);

  let quarantinedAt: number | null = null;
  const honestQuarantined = new Set<string>();
  const verdicts: Record<string, number> = {};
  runner.verifier.on('quarantine', (workerId, trust) => {
    if (!trust.quarantined) return;
    // Worker ids are the coordinator's to give: each client is known by the name it joined with.
    const name = hub.sessions.get(workerId)?.name ?? workerId;
    if (name === HOSTILE) quarantinedAt ??= job.state.round;
    else honestQuarantined.add(name);
  });
  runner.verifier.on('verdict', (verdict) => (verdicts[verdict.outcome] = (verdicts[verdict.outcome] ?? 0) + 1));
  const finished = new Promise<void>((resolve) => runner.once('finished', () => resolve()));
  const spacing = Math.max(1, Math.round(options.rounds / 30));
  const evalVersions = new Set(Array.from({ length: EVAL_POINTS }, (_, i) => options.rounds - i * spacing).filter((version) => version > 0));
  const snapshots: Float32Array[][] = [];
  const names = Object.keys(samplingTrainer.shapes);
  runner.on('round', () => {
    if (evalVersions.delete(job.state.version)) snapshots.push(names.map((name) => job.state.weights[name].slice()));
  });

  const tamper = options.attack?.start({ shapes: samplingTrainer.shapes, maxGradNorm: config.training.maxGradNorm });
  const connect = options.transport === 'websocket' ? await webSocketsTo(hub) : await inMemoryTo(hub);
  const tampering = tamper && ((bytes: Uint8Array) => pack(tamper(unpack(bytes) as Record<string, unknown>)).slice());
  const clients = [...HONEST, ...(tampering ? [HOSTILE] : ['honest-4'])].map((workerId) => {
    const client = new WorkerClient({
      workerId,
      kind: 'node',
      backend: 'wasm',
      device: 'in-process',
      name: workerId,
      transport: workerId === HOSTILE && tampering ? rewritingTransport(connect.worker, tampering) : connect.worker,
      loadBatch: (_dataset, indices) => dataset.batch(indices),
    });
    client.start();
    return client;
  });
  try {
    await finished;
    await runner.verifier.settled();
  } finally {
    await Promise.all(clients.map((client) => client.stop()));
    await runner.shutdown();
    await connect.close();
  }

  const weights = snapshots.map((arrays) => Object.fromEntries(names.map((name, i) => [name, arrays[i]])));
  const heldOut = await heldOutLosses(job, weights, options.evalExamples ?? 256, seed);
  runner.dispose();
  rmSync(outputDir, { recursive: true, force: true });
  return {
    attack: options.attack?.id ?? 'clean',
    rule: options.rule,
    setting: Object.entries(extra)
      .map(([key, value]) => `${key}=${value}`)
      .join(', '),
    rounds: job.state.version,
    heldOut,
    heldOutLoss: Object.values(heldOut).reduce((sum, value) => sum + value, 0),
    quarantinedAt,
    honestQuarantined: [...honestQuarantined],
    verdicts,
    seconds: (performance.now() - started) / 1000,
  };
}

/** How the workers reach the hub: a factory of their connections, and the coordinator's transport to close after the run. */
interface Connection {
  worker: WorkerTransportFactory;
  close(): Promise<void>;
}

/** The in-memory transport: every message packed to bytes and handed over on a later turn. */
async function inMemoryTo(hub: Hub): Promise<Connection> {
  const memory = new MemoryTransport();
  const serving = await serveTransports(hub, [memory]);
  return { worker: memory.connect, close: () => serving.close() };
}

/** The coordinator's WebSocket transport on a loopback port, and real `ws` sockets to it. */
async function webSocketsTo(hub: Hub): Promise<Connection> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const serving = await serveTransports(hub, [new WebSocketTransport(server, { path: '/ws', pingIntervalMs: 600_000 })]);
  return {
    worker: nodeWebSocketTransport(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`),
    async close() {
      await serving.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The model's mean losses over these weights on `count` held-out examples spread over the split, with fixed noise. */
async function heldOutLosses(job: Job, weights: readonly NamedArrays[], count: number, seed: number): Promise<Record<string, number>> {
  const trainer = job.spec.createTrainer(job.spec.parseConfig(job.config.model.config));
  try {
    const step = job.heldOut.length / count;
    const batch = loadMnist().batch(Array.from({ length: count }, (_, i) => job.heldOut[Math.floor(i * step)]));
    const sums: Record<string, number> = {};
    for (const each of weights) {
      trainer.setWeights(each);
      const { losses } = await trainer.lossAndGrads(batch, trainer.drawNoise(count, seed + 1));
      for (const [name, value] of Object.entries(losses)) sums[name] = (sums[name] ?? 0) + value / weights.length;
    }
    return sums;
  } finally {
    trainer.dispose();
  }
}
