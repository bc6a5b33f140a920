#!/usr/bin/env node
import { loadedModelModules, loadModelModules } from '../runtime/node/model-modules.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { usableCores } from '../runtime/node/cores.ts';
import { setServerHeapGrowth } from '../runtime/node/heap.ts';
import { threadsPerWorker } from '../runtime/node/wasm-threads.ts';
import { NATS_CLI_OPTIONS, NATS_CLI_USAGE, natsSettingsFrom, natsValues } from '../runtime/node/nats.ts';
import { TesseraError } from '../shared/protocol/errors.ts';
import { parseDoorLimits } from './limits.ts';
import { formatQuality, formatRound } from './progress.ts';
import { MAKE_SECRET, requireRealSecret } from '../runtime/node/placeholder-secrets.ts';
import { parseSeeds } from './nats-identities.ts';
import { startCoordinator } from './server.ts';
import { STORE_CLI_USAGE, storesFromCli } from './store/cli.ts';
import { jobData } from './job-data.ts';
import { parseJobConfig } from './config.ts';
import { lead, type Leadership } from './leadership.ts';
import { fencedStores } from './store/fenced-stores.ts';
import type { JetStreamStores } from './store/jetstream-stores.ts';

const USAGE = `Usage: tessera-coordinator [options]

Runs a coordinator: serves the worker protocol on ws://HOST:PORT/ws and the API on http://HOST:PORT/api.

  --port N             port (default 8080, env PORT; 0 picks a free one)
  --host ADDR          address to listen on (default 0.0.0.0)
  --config FILE        job config as JSON (defaults fill what it leaves out)
  --set KEY=VALUE      set one config key by its dotted path, e.g. --set training.batchSize=64 (repeatable)
  --rounds N           stop after N rounds (same as --set training.rounds=N; 0 runs until stopped)
  --model-module PATH  load a model family from a TypeScript module (its ModelSpec as default export; see
                       docs/model-modules.md); it is checked for data parallelism before the job starts,
                       then passed to the local workers and bundled for browsers (repeatable)
  --local-workers N    also start N Node workers on this machine, each with its share of the cores as wasm threads
  --worker-backend B   backend for the local workers (default: the fastest present)
  --worker-token T     require this token (or a join token) from workers (env TESSERA_WORKER_TOKEN; without it anyone may join)
  --admin-token T      token for the API's admin actions (env TESSERA_ADMIN_TOKEN; when not set, one is generated
                       and saved in the job's folder, mode 0600, and its path printed)
  --read-token T       also require a token to read the API and dashboard (env TESSERA_READ_TOKEN; reading is open without)
                       Tokens on the command line show in \`ps\`: prefer the environment. Make them with \`${MAKE_SECRET}\`.
                       Join tokens are signed with TESSERA_JOIN_KEY (or a key generated and saved beside the admin token).
                       TESSERA_NATS_WORKER_SEEDS_FILE (or TESSERA_NATS_WORKER_SEEDS, comma-separated): NATS worker
                       identities to lend, one per worker process (deploy/nats-users.ts).
  --door-limits JSON   override limits on what workers may send, e.g. '{"maxPreHelloPerAddress":256}' behind a proxy
                       (env TESSERA_DOOR_LIMITS; keys and defaults in coordinator/limits.ts)
${NATS_CLI_USAGE}                       with --nats, Node workers can also join over NATS (workers always can over WebSockets)
${STORE_CLI_USAGE}  --lease-ttl MS        with --store nats: the job's lease TTL (default 8000); the coordinator holding the lease
                       serves the job, others wait as standbys (503 on /readyz) and take over when it expires;
                       one that loses it exits with code 4 (docs/job-store.md, standby coordinators)
  --help               print this and exit
`;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8080' },
    host: { type: 'string', default: '0.0.0.0' },
    config: { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
    rounds: { type: 'string' },
    'model-module': { type: 'string', multiple: true, default: [] },
    'local-workers': { type: 'string', default: '0' },
    'worker-backend': { type: 'string' },
    'worker-token': { type: 'string', default: process.env.TESSERA_WORKER_TOKEN },
    'admin-token': { type: 'string', default: process.env.TESSERA_ADMIN_TOKEN },
    'read-token': { type: 'string', default: process.env.TESSERA_READ_TOKEN },
    'door-limits': { type: 'string', default: process.env.TESSERA_DOOR_LIMITS },
    help: { type: 'boolean', default: false },
    // Where each job's checkpoint, status and round log are kept (coordinator/store/cli.ts).
    store: { type: 'string', default: 'folder' },
    'store-replicas': { type: 'string' },
    'lease-ttl': { type: 'string' },
    ...NATS_CLI_OPTIONS,
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

/** Sets a dotted path in a nested object; the value is read as JSON when it parses, else as a string. */
function setPath(target: Record<string, any>, path: string, raw: string): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) node = node[key] ??= {};
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    /* a bare string */
  }
  node[keys.at(-1)!] = value;
}

const jobConfig: Record<string, any> = values.config ? JSON.parse(readFileSync(values.config, 'utf8')) : {};
for (const assignment of values.set) {
  const equals = assignment.indexOf('=');
  if (equals < 1) {
    process.stderr.write(`--set expects KEY=VALUE, got ${assignment}\n`);
    process.exit(2);
  }
  setPath(jobConfig, assignment.slice(0, equals), assignment.slice(equals + 1));
}
if (values.rounds !== undefined) setPath(jobConfig, 'training.rounds', values.rounds);
const localWorkers = Number(values['local-workers']);
// `npm start` waits for its own workers: a first round with one of them would train on half the batch.
if (localWorkers > 0 && jobConfig.training?.minWorkers === undefined) setPath(jobConfig, 'training.minWorkers', String(localWorkers));

let limits;
try {
  limits = parseDoorLimits(values['door-limits'] === undefined ? {} : JSON.parse(values['door-limits']));
} catch (error) {
  process.stderr.write(`invalid --door-limits: ${(error as Error).message}\n`);
  process.exit(2);
}

// Secrets copied from the examples (REPLACE-ME…) would start a cluster anyone could join or steer.
try {
  requireRealSecret('TESSERA_WORKER_TOKEN', values['worker-token']);
  requireRealSecret('TESSERA_ADMIN_TOKEN', values['admin-token']);
  requireRealSecret('TESSERA_READ_TOKEN', values['read-token']);
  requireRealSecret('TESSERA_JOIN_KEY', process.env.TESSERA_JOIN_KEY);
  if ((process.env.TESSERA_JOIN_KEY?.length ?? 32) < 32)
    throw new Error(`TESSERA_JOIN_KEY has ${process.env.TESSERA_JOIN_KEY!.length} characters; it signs join links and needs at least 32: \`${MAKE_SECRET}\``);
  requireRealSecret('TESSERA_NATS_PASS', natsValues(values).natsPass ?? process.env.TESSERA_NATS_PASS);
} catch (error) {
  process.stderr.write(`refusing to start: ${(error as Error).message}\n`);
  process.exit(2);
}

// The coordinator's own tensor work is small (initial weights, sample grids, export): wasm serves it on every machine.
const backend = await selectNodeBackend('wasm');
// Users' model families, registered (and checked) before the job config names one.
try {
  for (const { spec, checks } of await loadModelModules(values['model-module'], { admit: true })) {
    process.stdout.write(`model ${spec.id} loaded: ${checks.map((check) => check.name).join(', ')} checked\n`);
  }
} catch (error) {
  if (!(error instanceof TesseraError)) throw error;
  process.stderr.write(`refusing to start: ${error.message}\n`);
  process.exit(2);
}
const nats = natsSettingsFrom(natsValues(values));
// The workers' NATS identities to lend: a file (one seed per line), or the variable itself (a Kubernetes Secret).
const seedsFile = process.env.TESSERA_NATS_WORKER_SEEDS_FILE;
let natsWorkerSeeds: string[] | undefined;
try {
  requireRealSecret('TESSERA_NATS_WORKER_SEEDS', process.env.TESSERA_NATS_WORKER_SEEDS);
  const text = seedsFile ? readFileSync(seedsFile, 'utf8') : process.env.TESSERA_NATS_WORKER_SEEDS;
  natsWorkerSeeds = text === undefined ? undefined : parseSeeds(text);
  if (natsWorkerSeeds?.length === 0)
    throw new Error(`${seedsFile ? `TESSERA_NATS_WORKER_SEEDS_FILE (${seedsFile})` : 'TESSERA_NATS_WORKER_SEEDS'} holds no seeds`);
} catch (error) {
  process.stderr.write(
    `refusing to start: ${(error as Error).message}; make a pool with \`npx tsx deploy/nats-users.ts --workers 64 --out DIR\` (deploy/README.md)\n`,
  );
  process.exit(2);
}
const stores = await storesFromCli(values, nats).catch((error: unknown) => {
  if (!(error instanceof TesseraError)) throw error;
  process.stderr.write(`refusing to start: ${error.message}\n`);
  process.exit(error.code === 'INVALID_CONFIG' ? 2 : error.code === 'UNAUTHORIZED' ? 3 : 1);
});
// With --store nats the job is served by whichever coordinator holds its lease; the others wait here as standbys.
let leadership: Leadership | undefined;
if (stores.kind === 'nats') {
  try {
    leadership = await lead({
      nats: nats!,
      jobId: parseJobConfig(jobConfig).id,
      replicas: (stores as JetStreamStores).replicas,
      ttlMs: values['lease-ttl'] === undefined ? undefined : Number(values['lease-ttl']),
      port: Number(values.port),
      host: values.host,
      print: (line) => process.stdout.write(`${line}\n`),
      // Fencing: no round more, no write more (the store refuses them already); Kubernetes restarts this one as a standby.
      onLost: (error) => {
        process.stderr.write(`${error.message}; stopping at once, a standby takes the job over\n`);
        process.exit(4);
      },
    });
  } catch (error) {
    if (!(error instanceof TesseraError)) throw error;
    process.stderr.write(`refusing to start: ${error.code}${error.field ? ` at ${error.field}` : ''}: ${error.message}\n`);
    process.exit(error.code === 'INVALID_CONFIG' ? 2 : 1);
  }
}
// Before the job's first round: the collector's schedule for a process of many large socket reads (runtime/node/heap.ts).
setServerHeapGrowth();
const coordinator = await startCoordinator({
  port: Number(values.port),
  host: values.host,
  job: jobConfig,
  workerToken: values['worker-token'],
  adminToken: values['admin-token'],
  readToken: values['read-token'],
  joinKey: process.env.TESSERA_JOIN_KEY,
  natsWorkerSeeds,
  limits,
  nats,
  stores: leadership ? fencedStores(stores, [leadership.lease]) : stores,
  onNatsStatus: (status) => process.stdout.write(`${status}\n`),
}).catch((error: unknown) => {
  if (error instanceof TesseraError && error.field === 'port') {
    process.stderr.write(`refusing to start: ${error.message}\n`);
    process.exit(1);
  }
  if (error instanceof TesseraError && error.field === 'nats') {
    process.stderr.write(`${error.message}\n`);
    process.exit(error.code === 'UNAUTHORIZED' ? 3 : 1);
  }
  if (error instanceof TesseraError) {
    process.stderr.write(`invalid job config: ${error.code}${error.field ? ` at ${error.field}` : ''}: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
});
const { runner } = coordinator;
const { config } = runner.job;
const print = (line: string) => process.stdout.write(`${line}\n`);
print(`tessera coordinator on ${coordinator.url} (tfjs backend ${backend.name})`);
// A folder dataset says what was read from it: how many images, their classes and the shape they were resized to.
const datasetNote = config.dataset.path ? ` (${jobData(config).spec.description})` : '';
const roundBudget = config.training.rounds || 'unlimited';
print(`job ${config.id}: ${config.model.id} on ${config.dataset.id}${datasetNote}, batch ${config.training.batchSize} per worker, ${roundBudget} rounds`);
print(`outputs in ${runner.outputDir}${coordinator.resumed ? ` (resumed at round ${runner.job.state.round})` : ''}`);
if (stores.kind === 'nats') print(`job state in JetStream: checkpoint in ${runner.outputs.store.checkpointLocation}, status and round log beside it`);
print(`dashboard: ${coordinator.url}/dashboard   join page for browsers: ${coordinator.url}/join`);
print(`workers join with: npm run worker -- --url ws://<this host>:${coordinator.port}/ws`);
if (coordinator.adminTokenPath) print(`admin token: in ${coordinator.adminTokenPath} (generated, mode 0600; set TESSERA_ADMIN_TOKEN to choose one)`);
if (!values['worker-token'])
  print(
    'no worker token: anyone who can reach this port may join as a worker (set TESSERA_WORKER_TOKEN, then hand out join links: POST /api/jobs/<id>/join-tokens)',
  );
if (nats)
  print(
    `           or over NATS: npm run worker -- --nats ${nats.servers.join(',')} --job ${config.id}${natsWorkerSeeds ? ` --coordinator ${coordinator.url} (${natsWorkerSeeds.length} NATS identities to lend)` : ''}`,
  );

runner.on('diverged', (message) => process.stderr.write(`${message}\n`));
let lastWaiting = '';
runner.on('waiting', (reason) => {
  if (reason !== lastWaiting) print(reason);
  lastWaiting = reason;
});
runner.on('round', (summary) => print(formatRound(summary, (id) => coordinator.hub.sessions.get(id)?.name ?? id, config.training.rounds)));
runner.on('samples', (path) => print(`samples: ${path}`));
runner.quality.on('quality', (row) => print(formatQuality(row)));
runner.quality.on('skipped', (round) =>
  print(`quality scoring due after round ${round} skipped: the previous one still runs (raise output.evalEvery or lower output.evalSamples)`),
);
runner.on('exported', (dir) => print(`generator exported: ${dir}/model.json`));
runner.on('outputError', (error) => process.stderr.write(`output failed: ${error.message}\n`));
// The one log line per rejected update (the local workers leave it to this one; error.message names the field).
runner.on('rejected', (workerId, error) =>
  process.stderr.write(`update from ${coordinator.hub.sessions.get(workerId)?.name ?? workerId} (${workerId}) rejected: ${error.code}: ${error.message}\n`),
);
runner.verifier.on('quarantine', (workerId, trust) =>
  print(`worker ${workerId} ${trust.banned ? 'banned' : trust.quarantined ? 'quarantined' : 'released from quarantine'} (trust ${trust.score.toFixed(2)})`),
);
runner.verifier.on('ruling', (ruling) => {
  if (!ruling.agrees)
    print(
      `referee: worker ${ruling.workerId}'s gradient for round ${ruling.round} is not the recomputed one (relative distance ${ruling.distance.toPrecision(3)})`,
    );
});
coordinator.hub.on('joined', (session) => print(`worker ${session.id} joined (${session.kind}, ${session.backend}, ${session.name})`));
coordinator.hub.on('left', (session, reason) => print(`worker ${session.id} left: ${reason}`));

const children: ChildProcess[] = [];
const workerMain = fileURLToPath(new URL('../worker/main.ts', import.meta.url));
// Every core used, none by two workers' threads at once (on 2 cores, 2 workers of 1 thread each).
const localThreads = threadsPerWorker(usableCores(), localWorkers);
if (localWorkers > 0) print(`local workers: ${localWorkers}, ${localThreads} wasm thread${localThreads === 1 ? '' : 's'} each (${usableCores()} cores)`);
for (let i = 0; i < localWorkers; i++) {
  const args = ['--import', 'tsx', workerMain, '--url', `ws://127.0.0.1:${coordinator.port}/ws`, '--name', `local-${i + 1}`, '--quiet'];
  args.push('--threads', String(localThreads));
  if (values['worker-backend']) args.push('--backend', values['worker-backend']);
  for (const module of loadedModelModules()) args.push('--model-module', module);
  // The token goes in the environment, never on argv: any user of the machine can read a process's arguments (`ps`).
  const env: NodeJS.ProcessEnv = { ...process.env, TESSERA_WORKER_TOKEN: values['worker-token'] };
  if (!values['worker-token']) delete env.TESSERA_WORKER_TOKEN;
  // The children need neither the admin nor the read token.
  delete env.TESSERA_ADMIN_TOKEN;
  delete env.TESSERA_READ_TOKEN;
  delete env.TESSERA_JOIN_KEY;
  delete env.TESSERA_NATS_WORKER_SEEDS_FILE;
  delete env.TESSERA_NATS_WORKER_SEEDS;
  children.push(spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env }));
}

let shuttingDown = false;
async function shutdown(code: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const child of children) child.kill('SIGTERM');
  // A finished job has written its final outputs already.
  if (!runner.ended) await runner.flush();
  await coordinator.close();
  // After the last checkpoint: a standby takes over at once rather than after the lease's TTL.
  await leadership?.release();
  process.exit(code);
}
runner.on('finished', (round) => {
  print(`finished after ${round} rounds`);
  void shutdown(0);
});
process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));
