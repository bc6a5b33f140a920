#!/usr/bin/env node
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { loadDataset } from '../runtime/node/datasets.ts';
import { shardFetcher } from '../runtime/node/images-shards.ts';
import { ShardCache } from '../shared/data/shard-cache.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { WorkerClient, type WorkerEvent } from '../shared/worker/client.ts';
import { describeFigures } from '../shared/tfjs/backends.ts';
import { NODE_BACKENDS } from '../runtime/node/backend.ts';
import { startComputeThread } from '../runtime/node/compute-thread.ts';
import { usableCores } from '../runtime/node/cores.ts';
import { MAX_WASM_THREADS } from '../runtime/node/wasm-threads.ts';
import { NATS_CLI_OPTIONS, NATS_CLI_USAGE, natsSettingsFrom, natsValues } from '../runtime/node/nats.ts';
import { borrowNatsIdentity } from './nats-identity.ts';
import { natsWorkerTransport } from './nats-transport.ts';
import { requireRealSecret } from '../runtime/node/placeholder-secrets.ts';
import { loadModelModules } from '../runtime/node/model-modules.ts';
import { nodeWebSocketTransport } from '../runtime/node/websocket.ts';

const USAGE = `Usage: tessera-worker (--url ws://HOST:PORT/ws | --nats nats://HOST:4222) [options]

Joins a Tessera coordinator and trains until stopped (Ctrl+C leaves cleanly).

  --url URL[,URL...]   the coordinator's WebSocket URL (env TESSERA_URL); several, comma-separated: the coordinators
                       of one job (a leader and its standbys, docs/job-store.md), tried in turn on each reconnect
${NATS_CLI_USAGE}
  --coordinator URL    with --nats and no NATS credentials: borrow this worker's own NATS identity from the
                       coordinator's API at URL (env TESSERA_COORDINATOR_URL; needs the worker token)
  --job ID             the job to join (default: the coordinator's default job; over NATS, whose subjects name
                       the job, \`default\`: the id a coordinator's first job has unless configured)
  --token TOKEN        worker token or join token, when the coordinator asks for one (env TESSERA_WORKER_TOKEN;
                       prefer the environment: arguments show in \`ps\`)
  --backend NAME       force a tfjs backend: ${NODE_BACKENDS.join(', ')} (default: each present one is timed
                       on a small conv step and the fastest kept; software GPUs are passed over)
  --threads N          threads of the wasm backend, 1 to ${MAX_WASM_THREADS} (env TESSERA_THREADS; default: the cores this process may use, its
                       CPU quota counted, ${Math.min(usableCores(), MAX_WASM_THREADS)} here; more than 1 loads tfjs-wasm's threaded SIMD build)
  --name NAME          how the worker table shows this worker (default: the host name)
  --throttle F         stretch each compute F times, holding the compute thread as a slower machine would
                       (to try out slow workers)
  --model-module PATH  load a model family from a module, as the coordinator was given it (repeatable)
  --quiet              print only errors, and of rejected updates none (the coordinator logs them)
  --help               print this and exit
`;

/** The id of a coordinator's first job when its config names none (coordinator/config.ts). */
const DEFAULT_NATS_JOB = 'default';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.TESSERA_URL },
    coordinator: { type: 'string', default: process.env.TESSERA_COORDINATOR_URL },
    job: { type: 'string' },
    token: { type: 'string', default: process.env.TESSERA_WORKER_TOKEN },
    backend: { type: 'string' },
    name: { type: 'string', default: hostname() },
    throttle: { type: 'string', default: '1' },
    threads: { type: 'string', default: process.env.TESSERA_THREADS ?? String(Math.min(usableCores(), MAX_WASM_THREADS)) },
    'model-module': { type: 'string', multiple: true, default: [] },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    ...NATS_CLI_OPTIONS,
  },
});
const nats = natsSettingsFrom(natsValues(values));

if (values.help || (!values.url && !nats)) {
  process.stdout.write(USAGE);
  process.exit(values.help ? 0 : 2);
}
// A token copied from an example file would be refused by a coordinator that is set up right, or admitted by one that is not.
try {
  requireRealSecret('TESSERA_WORKER_TOKEN', values.token);
  requireRealSecret('TESSERA_NATS_PASS', nats?.pass);
} catch (error) {
  process.stderr.write(`refusing to start: ${(error as Error).message}\n`);
  process.exit(2);
}
// Users' model families (the coordinator checked them already): loaded here first, so a bad path stops the worker with its
// reason before the compute thread starts, which registers them again for itself.
try {
  await loadModelModules(values['model-module'], { admit: false });
} catch (error) {
  process.stderr.write(`[worker ${values.name}] ${(error as Error).message}\n`);
  process.exit(2);
}
// In a cluster every worker process has its own NATS identity, and may publish only as itself.
if (nats && values.coordinator && !nats.user && !nats.token && !nats.nkeySeedFile) {
  try {
    Object.assign(
      nats,
      await borrowNatsIdentity(values.coordinator, values.token, {
        onRetry: (error, delayMs) => log(`${error.message}; asking again in ${(delayMs / 1000).toFixed(0)} s`),
      }),
    );
  } catch (error) {
    process.stderr.write(`[worker ${values.name}] ${(error as Error).message}\n`);
    process.exit((error as TesseraError).code === ErrorCode.Unauthorized ? 3 : 1);
  }
}
const throttleFactor = Number(values.throttle);
if (!(throttleFactor >= 1)) {
  process.stderr.write(`--throttle must be a number >= 1, got ${values.throttle}\n`);
  process.exit(2);
}

const wasmThreads = Number(values.threads);
if (!Number.isInteger(wasmThreads) || wasmThreads < 1 || wasmThreads > MAX_WASM_THREADS) {
  process.stderr.write(`--threads must be an integer from 1 to ${MAX_WASM_THREADS}, got ${values.threads}\n`);
  process.exit(2);
}

const log = (line: string) => {
  if (!values.quiet) process.stdout.write(`[worker ${values.name}] ${line}\n`);
};

// The backend is chosen, and every step computed, in a thread of its own: this one keeps heartbeats and messages going meanwhile.
const compute = await startComputeThread({
  backend: values.backend,
  wasmThreads,
  modelModules: values['model-module'],
  onExit: (error) => {
    process.stderr.write(`[worker ${values.name}] ${error.message}; leaving\n`);
    process.exitCode = 1;
    void client.stop('compute thread exited');
  },
});
const { backend } = compute;
for (const skipped of backend.skipped) log(`backend ${skipped.name} skipped: ${skipped.reason}`);
log(`backend ${backend.name} on ${backend.device}${backend.figures.length > 0 ? ` (measured: ${describeFigures(backend.figures)})` : ' (forced)'}`);

/** The rounds this worker recently sent an update for (a rejection of one is the coordinator's to log, under --quiet). */
const updatedRounds = new Set<number>();

function onEvent(event: WorkerEvent): void {
  switch (event.type) {
    case 'connected':
      log(`joined job ${event.jobId} as ${event.workerId} (model ${event.modelId})`);
      break;
    case 'disconnected':
      log(`connection lost (${event.reason}); retrying in ${(event.retryInMs / 1000).toFixed(1)} s`);
      break;
    case 'update': {
      updatedRounds.add(event.round);
      if (updatedRounds.size > 16) updatedRounds.delete(updatedRounds.values().next().value!);
      const losses = Object.entries(event.losses)
        .map(([name, value]) => `${name} ${value.toFixed(3)}`)
        .join(' ');
      log(
        `round ${event.round}: ${event.samples} samples in ${event.computeMs.toFixed(0)} ms (${((event.samples / event.computeMs) * 1000).toFixed(1)} samples/s) ${losses}`,
      );
      break;
    }
    case 'reject':
      // The coordinator logs every update it rejects; its local workers (--quiet) leave those to it, so each is logged once.
      if (values.quiet && event.round !== undefined && updatedRounds.has(event.round)) break;
      process.stderr.write(
        `[worker ${values.name}] rejected${event.round === undefined ? '' : ` round ${event.round}`}: ${event.code}${event.field ? ` (${event.field})` : ''} ${event.message}\n`,
      );
      break;
    case 'idle':
      log(`idle: ${event.reason}`);
      break;
    case 'fatal':
      process.stderr.write(`[worker ${values.name}] refused: ${event.error.code}: ${event.error.message}\n`);
      process.exitCode = event.error.code === ErrorCode.Unauthorized ? 3 : 1;
      break;
    case 'ack':
      break;
  }
}

/** The coordinators to try in turn; one in the usual case. */
const urls = (values.url ?? '')
  .split(',')
  .map((url) => url.trim())
  .filter(Boolean);

/** Over NATS the job is part of every subject, so the worker names one: the coordinator's default id unless told. */
const jobId = values.job ?? (nats ? DEFAULT_NATS_JOB : undefined);

let shards: ShardCache | undefined;
const client: WorkerClient = new WorkerClient({
  jobId,
  token: values.token,
  kind: 'node',
  backend: backend.name,
  device: backend.device,
  name: values.name,
  // NATS when given (cluster workers), else the coordinator's WebSocket.
  transport: nats ? natsWorkerTransport({ ...nats, name: `tessera-worker-${values.name}` }, log) : nodeWebSocketTransport(urls),
  // Several coordinators: at most one serves, a standby refuses at once, so the next is tried within 2 s rather than 10.
  reconnectMaxMs: urls.length > 1 ? 2_000 : undefined,
  loadBatch: (dataset, indices, shardIds) => {
    if (!dataset.shardHashes) return loadDataset(dataset.id).batch(indices);
    // A folder dataset: its shards by hash, from this machine's cache (where a local coordinator wrote them) or the coordinator's API.
    shards ??= new ShardCache(shardFetcher(urls[0] ?? values.coordinator, () => [client.workerId, client.dataToken]));
    return shards.batch({ imageShape: dataset.imageShape, shardHashes: dataset.shardHashes }, indices, shardIds);
  },
  onEvent,
  throttleFactor,
  compute,
});

let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signals += 1;
    if (signals > 1) process.exit(130);
    log(`${signal}: finishing the current update, then leaving`);
    void client.stop(signal);
  });
}

client.start();
const reason = await client.done;
log(`stopped: ${reason}`);
// The wasm backend and open handles must not keep a leaving worker alive.
setTimeout(() => process.exit(), 100);
