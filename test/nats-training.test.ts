import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort, NatsServer } from './helpers/nats-server.ts';
import { startScript, stop, stopAll, type Started } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-nats-'));
let nats: NatsServer | undefined;

afterEach(async () => {
  await stopAll();
  await nats?.stop();
});
afterAll(() => rmSync(outputDir, { recursive: true, force: true }));

function startCoordinator(jobId: string, port: number, settings: string[]): Started {
  return startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--nats',
    nats!.url,
    '--set',
    `id=${jobId}`,
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'training.batchSize=4',
    '--set',
    'model.config.width=8',
    '--set',
    'model.config.latentDim=16',
    // These tests count every worker's update in every round: no verification copies (a copy's samples count once).
    '--set',
    'training.verification.duplicateShare=0',
    ...settings.flatMap((setting) => ['--set', setting]),
  ]);
}

const natsWorker = (jobId: string, name: string) => startScript('worker/main.ts', ['--nats', nats!.url, '--job', jobId, '--backend', 'wasm', '--name', name]);
const wsWorker = (port: number, name: string) => startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', name]);

interface RoundLine {
  round: number;
  version: number;
  applied: boolean;
  updates: { workerId: string }[];
  failures: { workerId: string; code: string }[];
}

const roundLog = (jobId: string): RoundLine[] => readRounds(join(outputDir, jobId, 'rounds.jsonl'));

describe('training over NATS', () => {
  it('two NATS workers and one WebSocket worker train one job: every round counts an update from each', async () => {
    nats = new NatsServer(await freePort());
    await nats.start();
    const port = await freePort();
    const coordinator = startCoordinator('mixed', port, ['training.rounds=20', 'training.minWorkers=3']);
    await coordinator.waitFor(/tessera coordinator on/);
    const workers = [natsWorker('mixed', 'nats-1'), natsWorker('mixed', 'nats-2'), wsWorker(port, 'ws-1')];
    await coordinator.waitFor(/finished after 20 rounds/, 150_000);
    const log = roundLog('mixed');
    expect(log).toHaveLength(20);
    for (const line of log) {
      expect(line.applied).toBe(true);
      expect(line.updates).toHaveLength(3);
    }
    expect(coordinator.output()).toMatch(/joined \(node, wasm, nats-1\)/);
    expect(coordinator.output()).toMatch(/joined \(node, wasm, ws-1\)/);
    await Promise.all(workers.map((worker) => stop(worker)));
  });

  it('survives nats-server going away for a few seconds: no round lost or applied twice', async () => {
    nats = new NatsServer(await freePort());
    await nats.start();
    const port = await freePort();
    // A short deadline: a round whose messages died with the server closes soon, with what it has.
    const coordinator = startCoordinator('fault', port, ['training.rounds=40', 'training.minWorkers=2', 'training.roundDeadlineMs=4000']);
    await coordinator.waitFor(/tessera coordinator on/);
    natsWorker('fault', 'nats-1');
    natsWorker('fault', 'nats-2');
    await coordinator.waitFor(/round 10\b/, 90_000);
    await nats.stop();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await nats.start();
    await coordinator.waitFor(/NATS reconnected/, 30_000);
    await coordinator.waitFor(/finished after 40 rounds/, 150_000);
    expect(coordinator.output()).toMatch(/NATS disconnected/);

    const log = roundLog('fault');
    // Round numbers: each once, in order, none skipped.
    expect(log.map((line) => line.round)).toEqual(log.map((_, index) => index));
    // Training steps: the applied rounds' versions run 0..39, each exactly once.
    const applied = log.filter((line) => line.applied);
    expect(applied.map((line) => line.version)).toEqual(Array.from({ length: 40 }, (_, index) => index));
    // After the outage both workers are back in the rounds.
    expect(log.at(-1)!.updates).toHaveLength(2);
  });

  it('a worker with wrong NATS credentials stops with a clear Unauthorized error instead of retrying', async () => {
    nats = new NatsServer(await freePort(), ['--user', 'tessera', '--pass', 'right-password']);
    await nats.start();
    const worker = startScript('worker/main.ts', [
      '--nats',
      nats.url,
      '--nats-user',
      'tessera',
      '--nats-pass',
      'wrong-password',
      '--backend',
      'wasm',
      '--name',
      'intruder',
    ]);
    expect(await worker.exited).toBe(3);
    expect(worker.output()).toMatch(/refused: UNAUTHORIZED: NATS refused the credentials/);
  });
});
