import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, nkeyAuthenticator, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack, unpack } from '../shared/codec/packr.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.ts';
import { subjects } from '../shared/protocol/subjects.ts';
import { WorkerClient } from '../shared/worker/client.ts';
import { parseSeeds } from '../coordinator/nats-identities.ts';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { borrowNatsIdentity } from '../worker/nats-identity.ts';
import { natsWorkerTransport } from '../worker/nats-transport.ts';
import { NATS_PASS, NATS_USER, startConfiguredNats, type ConfiguredNats } from './helpers/nats-conf.ts';
import { until } from './helpers/processes.ts';

/**
 * Worker identity over NATS, end to end: nats-server on deploy/nats.conf with
 * a generated pool, a coordinator lending the pool's identities for the
 * worker token, and workers that borrow one each. A worker cannot publish on
 * another's subject (the server refuses), and on its own subject it cannot
 * claim another's session (the coordinator refuses).
 */

const WORKER_TOKEN = 'nats-impersonation-worker-token';
const outputDir = mkdtempSync(join(tmpdir(), 'tessera-impersonation-nats-'));
let nats: ConfiguredNats;
let coordinator: Coordinator;
const clients: WorkerClient[] = [];
const connections: NatsConnection[] = [];

beforeAll(async () => {
  await selectNodeBackend('wasm');
  nats = await startConfiguredNats(2);
  coordinator = await startCoordinator({
    port: 0,
    host: '127.0.0.1',
    adminToken: 'nats-impersonation-admin',
    workerToken: WORKER_TOKEN,
    natsWorkerSeeds: parseSeeds(readFileSync(nats.seedsPath, 'utf8')),
    nats: { servers: [nats.url], user: NATS_USER, pass: NATS_PASS },
    job: {
      id: 'default',
      model: { config: { width: 4, latentDim: 8 } },
      training: { batchSize: 4, minWorkers: 1, roundDeadlineMs: 600_000, deadline: 'fixed' },
      output: { dir: outputDir },
    },
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((client) => client.stop('done')));
  await Promise.all(connections.map((connection) => connection.close().catch(() => undefined)));
  await coordinator?.close();
  await nats?.stop();
  rmSync(outputDir, { recursive: true, force: true });
}, 30_000);

const lend = (token?: string) =>
  fetch(`${coordinator.url}/api/nats/worker-identity`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('worker identity over NATS', () => {
  it('lends each worker process its own identity, for the worker token only, until the pool is spent', async () => {
    await expect((await lend()).json()).resolves.toMatchObject({ error: { code: ErrorCode.Unauthorized, field: 'authorization' } });
    expect((await lend('wrong-token-for-nats')).status).toBe(401);
    const first = await borrowNatsIdentity(coordinator.url, WORKER_TOKEN);
    const second = await borrowNatsIdentity(coordinator.url, WORKER_TOKEN);
    expect(new Set([first.nkeySeed, second.nkeySeed])).toEqual(new Set(nats.workers.map((worker) => worker.seed)));
    const spent = await lend(WORKER_TOKEN);
    expect(spent.status).toBe(503);
    expect((await spent.json()).error.message).toMatch(/all 2 NATS worker identities are in use/);
  });

  it('a worker joins with its identity; another cannot publish as it, nor claim its session on its own subject', async () => {
    const [victimIdentity, attackerIdentity] = nats.workers;
    // Refusals are counted over the coordinator's life: the test before this one was refused twice at the lending route.
    const unauthorizedBefore = coordinator.hub.refusals.get(ErrorCode.Unauthorized) ?? 0;
    const connected: string[] = [];
    const client = new WorkerClient({
      jobId: 'default',
      token: WORKER_TOKEN,
      kind: 'node',
      backend: 'wasm',
      device: 'test',
      name: 'victim',
      transport: natsWorkerTransport({ servers: [nats.url], nkeySeed: victimIdentity.seed }),
      loadBatch: (_dataset, indices) => loadMnist().batch(indices),
      onEvent: (event) => {
        if (event.type === 'connected') connected.push(event.workerId);
      },
    });
    clients.push(client);
    client.start();
    await until(
      () => connected.length,
      (count) => count === 1,
      20_000,
      'the worker to join over NATS',
    );
    const session = coordinator.hub.sessions.get(connected[0])!;
    expect(session.channel?.transport).toBe('nats');
    expect(session.channel?.remote).toBe(subjects.toWorker('default', victimIdentity.id));
    const channel = session.channel;

    const attacker = await connect({ servers: nats.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(attackerIdentity.seed)), reconnect: false });
    connections.push(attacker);
    const refusedSubjects: string[] = [];
    void (async () => {
      for await (const status of attacker.status()) {
        const context = (status as { permissionContext?: { subject: string } }).permissionContext;
        if (context) refusedSubjects.push(context.subject);
      }
    })();
    const replies: unknown[] = [];
    attacker.subscribe(subjects.toWorker('default', attackerIdentity.id), { callback: (_error, message) => replies.push(unpack(message.data)) });
    const claim = { type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'x', token: WORKER_TOKEN, workerId: connected[0] };
    // On the victim's subject: the server drops it.
    attacker.publish(subjects.toCoordinator('default', victimIdentity.id), pack(claim).slice());
    // On its own subject, naming the victim's id without its secret: the coordinator refuses it.
    attacker.publish(subjects.toCoordinator('default', attackerIdentity.id), pack(claim).slice());
    await attacker.flush();
    await until(
      () => replies.length,
      (count) => count >= 1,
      10_000,
      'the coordinator to answer the claim',
    );
    expect(replies).toEqual([expect.objectContaining({ type: 'error', code: ErrorCode.Unauthorized, field: 'resumeSecret' })]);
    // The server's permission error comes on the status stream, in its own time: it may follow the coordinator's reply.
    await until(
      () => refusedSubjects.length,
      (count) => count >= 1,
      10_000,
      'the server to refuse the publish on the victim subject',
    );
    expect(refusedSubjects).toEqual([subjects.toCoordinator('default', victimIdentity.id)]);
    expect(coordinator.hub.refusals.get(ErrorCode.Unauthorized)).toBe(unauthorizedBefore + 1);
    expect(coordinator.hub.sessions.get(connected[0])).toBe(session);
    expect(session.channel).toBe(channel);
    expect(connected).toHaveLength(1);
  }, 60_000);
});
