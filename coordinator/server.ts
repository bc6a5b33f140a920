import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import type { NatsSettings } from '../runtime/node/nats.ts';
import type { CoordinatorTransport } from '../shared/transport/coordinator.ts';
import { liveNatsIds } from './api/nats-identities.ts';
import { createApp } from './app.ts';
import { Hub } from './hub.ts';
import type { DoorLimits } from './limits.ts';
import { attachIdentity, WorkerIdentity } from './identity.ts';
import { JoinTokens } from './join-tokens.ts';
import { NatsIdentityPool, OBSERVE_MS } from './nats-identities.ts';
import { openJob } from './job/open-job.ts';
import type { JobRunner } from './job/runner.ts';
import { loadOrCreateSecret } from './secrets.ts';
import { folderStores } from './store/folder-store.ts';
import type { JobStores } from './store/job-store.ts';
import { NatsTransport } from './transports/nats.ts';
import { AggregatorLink } from './aggregation/link.ts';
import { serveTransports } from './transports/serve.ts';
import { WebSocketTransport } from './transports/websocket.ts';

/** The generated admin token, in the first job's folder. */
export const ADMIN_TOKEN_FILE = 'admin-token';
/** The generated key that signs join tokens and resume secrets, beside it. */
export const JOIN_KEY_FILE = 'join-key';

export interface CoordinatorOptions {
  /** 0 picks a free port. */
  port: number;
  host: string;
  /** The first job, as a partial config (defaults fill the rest); workers that name no job join it. */
  job: unknown;
  workerToken?: string;
  /**
   * Required by the API's admin actions (create, pause, resume, stop, join
   * tokens); when not given, generated once and saved in the first job's
   * folder (ADMIN_TOKEN_FILE, mode 0600), so a restart keeps it.
   */
  adminToken?: string;
  /** Signs join tokens and resume secrets (at least 32 bytes); when not given, generated and saved beside the admin token (JOIN_KEY_FILE). */
  joinKey?: string;
  /** Seeds of the NATS worker identities to lend, one per worker process (deploy/nats-users.ts). */
  natsWorkerSeeds?: string[];
  /** When set, reading the API needs this token too (or the admin token); otherwise reading is open. */
  readToken?: string;
  heartbeatMs?: number;
  /** How long a silent NATS worker is kept (default: the longer of 3 heartbeats and 30 s). */
  silenceTimeoutMs?: number;
  /** Also serve workers over NATS (WebSockets are always served). */
  nats?: NatsSettings;
  /** Told of NATS disconnects and reconnects. */
  onNatsStatus?(status: string): void;
  /** Overrides of the limits on what workers may send (coordinator/limits.ts has the defaults and why). */
  limits?: Partial<DoorLimits>;
  /** More transports to serve workers on, started like the built-in ones (the in-memory one, in tests). */
  transports?: CoordinatorTransport[];
  /** Where the jobs' checkpoints, status and round logs are kept: each job's output folder when not given (`--store`). Closed with the coordinator. */
  stores?: JobStores;
}

export interface Coordinator {
  port: number;
  url: string;
  hub: Hub;
  /** The first job's runner. */
  runner: JobRunner;
  /** True when the first job continued from a checkpoint. */
  resumed: boolean;
  adminToken: string;
  /** Where the generated admin token is saved; undefined when it was given. */
  adminTokenPath: string | undefined;
  /** Adds a job while the coordinator runs (the API's POST /api/jobs). */
  createJob(raw: unknown): Promise<JobRunner>;
  close(): Promise<void>;
}

/**
 * Opens the first job (from its last checkpoint when there is one), starts
 * the HTTP server and the transports (WebSockets always, NATS when
 * configured, any given). The tfjs backend must be chosen before.
 */
export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const stores = options.stores ?? folderStores;
  const first = await openJob(options.job, stores);
  const heartbeatMs = options.heartbeatMs ?? 10_000;
  const hub = new Hub({ defaultJobId: first.runner.job.config.id, heartbeatMs, workerToken: options.workerToken, limits: options.limits });
  const secretsDir = first.runner.outputDir;
  // One key signs join tokens and resume secrets, so both outlive a restart.
  const coordinatorKey = new TextEncoder().encode(options.joinKey ?? (await loadOrCreateSecret(join(secretsDir, JOIN_KEY_FILE))));
  const joinTokens = new JoinTokens({ key: async () => coordinatorKey, dirOf: (jobId) => hub.runners.get(jobId)?.outputDir });
  attachIdentity(hub, new WorkerIdentity({ joinTokens, coordinatorKey }));
  hub.addRunner(first.runner);
  const adminTokenPath = options.adminToken === undefined ? join(secretsDir, ADMIN_TOKEN_FILE) : undefined;
  const adminToken = options.adminToken ?? (await loadOrCreateSecret(adminTokenPath!));

  const createJob = async (raw: unknown): Promise<JobRunner> => {
    const id = (raw as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string' && hub.runners.has(id))
      throw new TesseraError(ErrorCode.InvalidConfig, `a job ${JSON.stringify(id)} exists already`, { field: 'id' });
    const { runner } = await openJob(raw, stores);
    if (hub.runners.has(runner.job.config.id))
      throw new TesseraError(ErrorCode.InvalidConfig, `a job ${JSON.stringify(runner.job.config.id)} exists already`, { field: 'id' });
    hub.addRunner(runner);
    return runner;
  };

  const natsIdentities = options.natsWorkerSeeds?.length ? new NatsIdentityPool(options.natsWorkerSeeds) : undefined;
  const observer = natsIdentities ? setInterval(() => natsIdentities.observe(liveNatsIds(hub)), OBSERVE_MS) : undefined;
  observer?.unref();
  const app = createApp(hub, { adminToken, readToken: options.readToken, createJob, workerToken: options.workerToken, natsIdentities });
  // Start-up failed after the job opened: its timers, scoring thread and store go too, so a caller may go on.
  const abandon = async () => {
    clearInterval(observer);
    await Promise.all([...hub.runners.values()].map((runner) => runner.shutdown()));
    hub.dispose();
    for (const runner of hub.runners.values()) runner.dispose();
    await stores.close();
  };
  const server = await new Promise<Server>((resolveServer, rejectServer) => {
    const created = serve({ fetch: app.fetch, port: options.port, hostname: options.host }, () => resolveServer(created as Server)) as Server;
    // A port taken (another coordinator still running) is the usual cause: said plainly, not as a crash.
    created.once('error', (error: NodeJS.ErrnoException) => {
      const taken = error.code === 'EADDRINUSE' || error.code === 'EACCES';
      const why =
        error.code === 'EADDRINUSE'
          ? 'is in use (another coordinator still running?): stop it, or pass --port N'
          : 'may not be opened by this user: pass --port N above 1023';
      const refusal = taken ? new TesseraError(ErrorCode.InvalidConfig, `port ${options.port} on ${options.host} ${why}`, { field: 'port' }) : error;
      void abandon().then(() => rejectServer(refusal), rejectServer);
    });
  });
  const transports: CoordinatorTransport[] = [new WebSocketTransport(server, { path: '/ws', pingIntervalMs: heartbeatMs * 3 })];
  const nats = options.nats
    ? new NatsTransport({ settings: options.nats, heartbeatMs, silenceTimeoutMs: options.silenceTimeoutMs, onStatus: options.onNatsStatus })
    : undefined;
  if (nats) transports.push(nats);
  transports.push(...(options.transports ?? []));
  const served = await serveTransports(hub, transports).catch(async (error: unknown) => {
    // NATS unreachable: nothing is left listening.
    server.close();
    await abandon();
    throw error;
  });
  // Aggregator processes may serve any job over NATS (docs/aggregators.md).
  const links: AggregatorLink[] = [];
  const link = (runner: JobRunner) => {
    const port = nats?.aggregationPort(runner.job.config.id);
    if (port) links.push(new AggregatorLink(port, runner, hub, options.onNatsStatus));
  };
  for (const runner of hub.runners.values()) link(runner);
  hub.on('jobAdded', link);
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${options.host === '0.0.0.0' ? '127.0.0.1' : options.host}:${port}`,
    hub,
    runner: first.runner,
    resumed: first.resumed,
    adminToken,
    adminTokenPath,
    createJob,
    async close() {
      clearInterval(observer);
      for (const each of links) each.dispose();
      await Promise.all([...hub.runners.values()].map((runner) => runner.shutdown()));
      await served.close();
      hub.dispose();
      server.closeAllConnections?.();
      await new Promise<void>((done) => server.close(() => done()));
      for (const runner of hub.runners.values()) runner.dispose();
      await stores.close();
    },
  };
}
