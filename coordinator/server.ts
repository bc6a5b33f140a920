import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { serve } from '@hono/node-server';
import { loadMnist } from '../shared/data/mnist.ts';
import { getModel } from '../shared/models/registry.ts';
import { createApp } from './app.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { parseJobConfig, type JobConfig } from './config.ts';
import { Hub } from './hub.ts';
import { Job } from './job.ts';
import { JobRunner } from './runner.ts';
import { attachWebSocketTransport } from './transports/websocket.ts';
import { attachNatsTransport } from './transports/nats.ts';
import { connectNats, type NatsSettings } from '../worker/nats.ts';

export interface CoordinatorOptions {
  /** 0 picks a free port. */
  port: number;
  host: string;
  /** The job to run, as a partial config (defaults fill the rest). */
  job: unknown;
  workerToken?: string;
  heartbeatMs?: number;
  /** How long a silent NATS worker is kept (default: the longer of 3 heartbeats and 30 s). */
  silenceTimeoutMs?: number;
  /** Also serve workers over NATS (WebSockets are always served). */
  nats?: NatsSettings;
  /** Told of NATS disconnects and reconnects. */
  onNatsStatus?(status: string): void;
}

export interface Coordinator {
  port: number;
  url: string;
  hub: Hub;
  runner: JobRunner;
  /** True when the job continued from a checkpoint. */
  resumed: boolean;
  close(): Promise<void>;
}

/** Connects to NATS and serves the job's workers there too; new weights are broadcast once per version. */
async function startNats(settings: NatsSettings, hub: Hub, runner: JobRunner, timing: { heartbeatMs: number; silenceTimeoutMs?: number }, onStatus?: (status: string) => void) {
  const connection = await connectNats({ ...settings, name: settings.name ?? 'tessera-coordinator' });
  void (async () => {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect') onStatus?.(`NATS ${status.type}ed (${status.data})`);
    }
  })();
  const jobId = runner.job.config.id;
  const transport = attachNatsTransport(connection, hub, { jobIds: [jobId], ...timing });
  runner.on('published', (weights) => {
    transport.broadcast(jobId, { type: 'weights', hash: weights.hash, version: weights.version, codec: weights.codec, tensors: weights.bytes });
    hub.emit('bytesOut', jobId, weights.bytes.byteLength, 'weights-broadcast', 'nats');
  });
  return {
    async close() {
      await transport.close();
      await connection.drain().catch(() => undefined);
    },
  };
}

/** Tensor shapes of a config's model, from a throwaway trainer. */
function shapesOf(config: JobConfig): Record<string, number[]> {
  const spec = getModel(config.model.id);
  const trainer = spec.createTrainer(spec.parseConfig(config.model.config));
  const shapes = trainer.shapes;
  trainer.dispose();
  return shapes;
}

/**
 * Builds the job (from its last checkpoint when there is one), starts the
 * HTTP server and the WebSocket transport. The tfjs backend must be chosen
 * before: the coordinator uses it to initialize weights and draw samples.
 */
export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const requested = parseJobConfig(options.job);
  const checkpoint = await loadCheckpoint(resolve(requested.output.dir, requested.id), shapesOf);
  // A checkpoint's config is the job's: training resumes as it was set up. Only the round budget and the output folder may change.
  const config: JobConfig = checkpoint
    ? { ...checkpoint.config, training: { ...checkpoint.config.training, rounds: requested.training.rounds }, output: { ...checkpoint.config.output, dir: requested.output.dir } }
    : requested;
  const spec = getModel(config.model.id);
  const sampler = spec.createTrainer(spec.parseConfig(config.model.config));
  const dataset = loadMnist();
  const state = checkpoint?.state ?? Job.initialState(spec, sampler.initialWeights(config.training.seed), config.dataset.shards);
  const job = new Job(config, sampler.shapes, state, dataset.count);
  const runner = new JobRunner(job, sampler);
  const heartbeatMs = options.heartbeatMs ?? 10_000;
  const hub = new Hub({ defaultJobId: config.id, heartbeatMs, workerToken: options.workerToken });
  hub.addRunner(runner);

  const app = createApp(hub);
  const server = await new Promise<Server>((resolveServer) => {
    const created = serve({ fetch: app.fetch, port: options.port, hostname: options.host }, () => resolveServer(created as Server)) as Server;
  });
  const transport = attachWebSocketTransport(server, hub, { path: '/ws', pingIntervalMs: heartbeatMs * 3 });
  const nats = options.nats ? await startNats(options.nats, hub, runner, { heartbeatMs, silenceTimeoutMs: options.silenceTimeoutMs }, options.onNatsStatus) : undefined;
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${options.host === '0.0.0.0' ? '127.0.0.1' : options.host}:${port}`,
    hub,
    runner,
    resumed: checkpoint !== undefined,
    async close() {
      await runner.stop();
      transport.close();
      await nats?.close();
      server.closeAllConnections?.();
      await new Promise<void>((done) => server.close(() => done()));
      sampler.dispose();
    },
  };
}
