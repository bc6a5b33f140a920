import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { freePort, NatsServer } from './helpers/nats-server.ts';
import { startScript, stop, stopAll } from './helpers/processes.ts';
import { waitForRounds } from './helpers/round-log.ts';

/*
 * A Node worker computes in a worker_thread (runtime/node/compute-thread.ts),
 * so its heartbeats go on during a step. Over NATS a worker silent for longer
 * than the coordinator's silence limit is dropped: here the limit is 1 s,
 * and the worker's throttle holds its compute thread so that every step lasts
 * longer than that, as a slow machine's would. The worker must stay joined
 * through every round and each of its updates be applied. (With the step on
 * the worker's own thread, the coordinator dropped it in the first round.)
 */

const JOB = 'longstep';
const ROUNDS = 2;
const HEARTBEAT_MS = 200;
const SILENCE_MS = 1_000;
/** The default dcgan on 4 examples takes 60-200 ms on wasm (2-core machine, idle to loaded): 30 times that is 2-6 s, beyond the silence limit. */
const THROTTLE = 30;

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-long-step-'));
let server: NatsServer;
let coordinator: Coordinator;

beforeAll(async () => {
  await selectNodeBackend('wasm');
  server = new NatsServer(await freePort());
  await server.start();
  coordinator = await startCoordinator({
    port: 0,
    host: '127.0.0.1',
    nats: { servers: [server.url] },
    heartbeatMs: HEARTBEAT_MS,
    silenceTimeoutMs: SILENCE_MS,
    job: {
      id: JOB,
      training: {
        rounds: ROUNDS,
        minWorkers: 1,
        batchSize: 4,
        // A deadline far above any step here: the update must count, not arrive after its round closed.
        deadline: 'fixed',
        roundDeadlineMs: 60_000,
        verification: { duplicateShare: 0 },
      },
      output: { dir: outputDir, checkpointEvery: 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000 },
    },
  });
}, 30_000);

afterAll(async () => {
  await stopAll();
  await coordinator?.close();
  await server?.stop();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('a Node worker whose step outlasts the silence limit', () => {
  it('keeps sending heartbeats while it computes: it stays joined and every update is applied', async () => {
    const joined: string[] = [];
    const left: string[] = [];
    coordinator.hub.on('joined', (session) => joined.push(session.id));
    coordinator.hub.on('left', (_session, reason) => left.push(reason));
    const worker = startScript('worker/main.ts', ['--nats', server.url, '--job', JOB, '--backend', 'wasm', '--name', 'slow', '--throttle', String(THROTTLE)]);

    const { rounds, workers } = await waitForRounds(join(outputDir, JOB, 'rounds.jsonl'), ROUNDS, 50_000);
    expect(left).toEqual([]);
    expect(joined).toHaveLength(1);
    expect([...workers]).toEqual(joined);
    for (const round of rounds) {
      expect(round.applied).toBe(true);
      expect(round.failures).toEqual([]);
      expect(round.updates).toHaveLength(1);
      // The test means something only if the step did outlast the limit.
      expect(round.updates[0].computeMs).toBeGreaterThan(SILENCE_MS);
    }
    expect(worker.output()).not.toMatch(/connection lost|rejected/);
    await stop(worker);
  }, 60_000);
});
