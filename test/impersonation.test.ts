import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCodec } from '../shared/codec/index.ts';
import { arraysToTensors, tensorsToArrays } from '../shared/codec/named.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { getModel } from '../shared/models/registry.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { exampleNoise } from '../shared/training/noise.ts';
import type { Assign, Welcome } from '../shared/protocol/messages.ts';
import { WorkerClient } from '../shared/worker/client.ts';
import { nodeWebSocketTransport } from '../runtime/node/websocket.ts';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { until } from './helpers/processes.ts';
import { RawWorker } from './helpers/raw-worker.ts';

/**
 * A worker id is public (the job API and /metrics show it). Against a real
 * coordinator on loopback: a connection that claims a live worker's id
 * without the secret its welcome carried is refused, and the worker keeps its
 * connection, its session and its assignment; the worker itself, with its
 * secret, resumes.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-impersonation-'));
const small = {
  id: 'default',
  model: { config: { width: 4, latentDim: 8 } },
  training: { batchSize: 8, minWorkers: 1, roundDeadlineMs: 600_000, deadline: 'fixed' },
  output: { dir: outputDir },
};
let coordinator: Coordinator;
let wsUrl = '';

beforeAll(async () => {
  await selectNodeBackend('wasm');
  coordinator = await startCoordinator({ port: 0, host: '127.0.0.1', adminToken: 'impersonation-admin', job: small });
  wsUrl = `${coordinator.url.replace('http', 'ws')}/ws`;
});
afterAll(async () => {
  await coordinator?.close();
  rmSync(outputDir, { recursive: true, force: true });
});

/** A real update for an assignment: the job's model, its weights by hash, the assigned examples and seed. */
async function computeUpdate(worker: RawWorker, welcome: Welcome, assign: Assign) {
  const spec = getModel(welcome.model.id);
  const trainer = spec.createTrainer(spec.parseConfig(welcome.model.config));
  const before = worker.received.length;
  worker.send({ type: 'fetchWeights', hash: assign.weightsHash });
  const weights = await worker.next('weights', before);
  trainer.setWeights(tensorsToArrays(getCodec(weights.codec).decode(weights.tensors), trainer.shapes, 'weights'));
  const batch = loadMnist().batch(assign.sampleIndices);
  const { grads, losses } = await trainer.lossAndGrads(batch, exampleNoise(trainer, assign.seed, assign.sampleIndices));
  const tensors = getCodec(assign.codec).encode(arraysToTensors(grads, trainer.shapes)).slice();
  trainer.dispose();
  return {
    type: 'update',
    jobId: assign.jobId,
    round: assign.round,
    version: assign.version,
    weightsHash: assign.weightsHash,
    samples: batch.count,
    codec: assign.codec,
    tensors,
    losses,
    timing: { computeMs: 1, fetchMs: 1 },
  };
}

describe('impersonating a live worker', () => {
  it('refuses a second connection claiming the id, with no secret or a wrong one; the victim keeps its session and work', async () => {
    const victim = new RawWorker(wsUrl);
    await victim.hello({ name: 'victim' });
    const welcome = await victim.next('welcome');
    const assign = await victim.next('assign');
    const { runner, hub } = coordinator;
    const session = hub.sessions.get(welcome.workerId)!;
    const channel = session.channel;
    const refusalsBefore = hub.refusals.get(ErrorCode.Unauthorized) ?? 0;

    const attempts = [{}, { resumeSecret: 'A'.repeat(43) }, { resumeSecret: welcome.dataToken }, { resumeSecret: '' }];
    for (const claim of attempts) {
      const intruder = new RawWorker(wsUrl);
      await intruder.hello({ name: 'intruder', workerId: welcome.workerId, ...claim });
      expect(await intruder.next('error'), JSON.stringify(claim)).toMatchObject({ code: ErrorCode.Unauthorized, field: 'resumeSecret' });
      expect((await intruder.closed).reason).toBe(ErrorCode.Unauthorized);
      // Nothing an intruder could do on its way out reaches the session.
      expect(intruder.received.map((message) => message.type)).toEqual(['error']);
    }
    expect(hub.refusals.get(ErrorCode.Unauthorized)).toBe(refusalsBefore + attempts.length);

    // The victim: same connection, same session, same open assignment, and its update counts.
    expect(victim.isOpen).toBe(true);
    expect(hub.sessions.get(welcome.workerId)).toBe(session);
    expect(session.channel).toBe(channel);
    expect(session.name).toBe('victim');
    expect(runner.job.current?.round).toBe(assign.round);
    expect(runner.job.current?.assignments.get(welcome.workerId)?.message.sampleIndices).toEqual(assign.sampleIndices);
    expect(victim.received.filter((message) => message.type === 'assign')).toHaveLength(1);
    const acked = victim.received.length;
    victim.send(await computeUpdate(victim, welcome, assign));
    expect(await victim.next('ack', acked)).toEqual({ type: 'ack', round: assign.round });
    expect(session.updatesAccepted).toBe(1);
    victim.close();
    await victim.closed;
  });

  it('lets the worker resume with its secret, rotates the secret, and refuses the old one after', async () => {
    const first = new RawWorker(wsUrl);
    await first.hello({ name: 'roamer' });
    const welcome = await first.next('welcome');
    first.close();
    await first.closed;
    await until(
      () => coordinator.hub.sessions.get(welcome.workerId)?.channel,
      (channel) => channel === undefined,
      5_000,
      'the session to lose its connection',
    );

    const back = new RawWorker(wsUrl);
    await back.hello({ name: 'roamer', workerId: welcome.workerId, resumeSecret: welcome.resumeSecret });
    const resumed = await back.next('welcome');
    expect(resumed.workerId).toBe(welcome.workerId);
    expect(resumed.resumeSecret).not.toBe(welcome.resumeSecret);

    const replay = new RawWorker(wsUrl);
    await replay.hello({ workerId: welcome.workerId, resumeSecret: welcome.resumeSecret });
    expect(await replay.next('error')).toMatchObject({ code: ErrorCode.Unauthorized, field: 'resumeSecret' });
    expect(back.isOpen).toBe(true);
    back.close();
  });

  it('a hello naming an id the coordinator does not know gets a fresh id of its own', async () => {
    const stranger = new RawWorker(wsUrl);
    await stranger.hello({ workerId: 'w1-chosen', resumeSecret: 'B'.repeat(43) });
    const welcome = await stranger.next('welcome');
    expect(welcome.workerId).not.toBe('w1-chosen');
    expect(coordinator.hub.sessions.has('w1-chosen')).toBe(false);
    stranger.close();
  });

  it('after a coordinator restart a worker keeps its id with its secret; a secret signed for another id gets a fresh one', async () => {
    const [worker, attacker] = [new RawWorker(wsUrl), new RawWorker(wsUrl)];
    await worker.hello({ name: 'worker' });
    await attacker.hello({ name: 'attacker' });
    const [mine, theirs] = [await worker.next('welcome'), await attacker.next('welcome')];
    worker.close();
    attacker.close();
    await Promise.all([worker.closed, attacker.closed]);
    // The same job folder (and so the same coordinator key), no session remembered.
    await coordinator.close();
    coordinator = await startCoordinator({ port: 0, host: '127.0.0.1', adminToken: 'impersonation-admin', job: small });
    wsUrl = `${coordinator.url.replace('http', 'ws')}/ws`;
    expect(coordinator.hub.sessions.size).toBe(0);

    const hello = async (fields: Record<string, unknown>) => {
      const connection = new RawWorker(wsUrl);
      await connection.hello(fields);
      const welcome = await connection.next('welcome');
      connection.close();
      return welcome.workerId;
    };
    // Someone else's secret, a tampered one, or none: the id is not handed over.
    const [nonce, signature] = mine.resumeSecret.split('.');
    for (const resumeSecret of [theirs.resumeSecret, `${nonce}.${signature.slice(0, -2)}AA`, `${theirs.resumeSecret.split('.')[0]}.${signature}`, undefined]) {
      expect(await hello({ workerId: mine.workerId, ...(resumeSecret ? { resumeSecret } : {}) })).not.toBe(mine.workerId);
    }
    expect(await hello({ workerId: mine.workerId, resumeSecret: mine.resumeSecret })).toBe(mine.workerId);
  });

  it('the worker client resumes its own session after its connection drops', async () => {
    const connected: string[] = [];
    const client = new WorkerClient({
      kind: 'node',
      backend: 'wasm',
      device: 'test',
      name: 'client',
      transport: nodeWebSocketTransport(wsUrl),
      loadBatch: (_dataset, indices) => loadMnist().batch(indices),
      onEvent: (event) => {
        if (event.type === 'connected') connected.push(event.workerId);
      },
      reconnectInitialMs: 50,
    });
    client.start();
    await until(
      () => connected.length,
      (count) => count === 1,
      15_000,
      'the client to join',
    );
    const firstSecret = client.resumeSecret;
    // The coordinator side drops the connection (a proxy timing out, a network change).
    coordinator.hub.sessions.get(connected[0])!.channel!.close('dropped by the test');
    await until(
      () => connected.length,
      (count) => count === 2,
      15_000,
      'the client to come back',
    );
    expect(connected[1]).toBe(connected[0]);
    expect(client.resumeSecret).not.toBe(firstSecret);
    await client.stop('done');
  });
});
