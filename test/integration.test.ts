import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getCodec } from '../shared/codec/index.ts';
import { tensorsToArrays } from '../shared/codec/named.ts';
import { decodeCheckpoint, CHECKPOINT_FILE } from '../coordinator/checkpoint.ts';
import { startScript, stop, stopAll, type Started } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-integration-'));
const jobDir = join(outputDir, 'default');

/** A port that was free a moment ago: the coordinator restarts on the same one, as a real deployment would. */
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function startCoordinator(port: number, rounds: number): Started {
  return startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--rounds',
    String(rounds),
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'training.batchSize=4',
    '--set',
    'training.minWorkers=2',
    '--set',
    'output.checkpointEvery=5',
    // These tests count every worker's samples in every round: no verification copies (a copy's samples count once).
    '--set',
    'training.verification.duplicateShare=0',
    '--set',
    'model.config.width=8',
    '--set',
    'model.config.latentDim=16',
  ]);
}

function startWorker(port: number, name: string): Started {
  return startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', name]);
}

interface RoundLine {
  round: number;
  version: number;
  applied: boolean;
  losses: Record<string, number>;
  updates: { workerId: string; samples: number }[];
  failures: unknown[];
}

function roundLog(): RoundLine[] {
  return readRounds(join(jobDir, 'rounds.jsonl'));
}

afterAll(async () => {
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('coordinator and two Node workers over WebSockets', () => {
  it('trains 20 rounds, checkpoints, and a restarted coordinator continues from the checkpoint', async () => {
    const port = await freePort();
    const coordinator = startCoordinator(port, 20);
    await coordinator.waitFor(/tessera coordinator on/);
    const workers = [startWorker(port, 'one'), startWorker(port, 'two')];
    await coordinator.waitFor(/finished after 20 rounds/, 120_000);
    expect(await coordinator.exited).toBe(0);

    const log = roundLog();
    expect(log).toHaveLength(20);
    log.forEach((line, index) => {
      expect(line.round).toBe(index);
      // The version advances by one per round: round r trains version r.
      expect(line.version).toBe(index);
      expect(line.applied).toBe(true);
      expect(line.updates).toHaveLength(2);
      expect(line.failures).toHaveLength(0);
      // A round trains batchSize samples per worker, split between them by measured speed.
      expect(line.updates.reduce((sum, update) => sum + update.samples, 0)).toBe(8);
      expect(Number.isFinite(line.losses.d) && Number.isFinite(line.losses.g)).toBe(true);
    });
    expect(new Set(log.flatMap((line) => line.updates.map((update) => update.workerId))).size).toBe(2);
    expect(existsSync(join(jobDir, CHECKPOINT_FILE))).toBe(true);
    expect(existsSync(join(jobDir, 'samples', 'latest.png'))).toBe(true);
    expect(existsSync(join(jobDir, 'model', 'model.json'))).toBe(true);

    // Workers leave cleanly on SIGTERM.
    await Promise.all(workers.map((worker) => stop(worker)));
    for (const worker of workers) expect(worker.output()).toMatch(/stopped: SIGTERM/);

    // The restart resumes from the checkpoint: same weights, round numbers continue.
    const checkpointBytes = readFileSync(join(jobDir, CHECKPOINT_FILE));
    const restarted = startCoordinator(port, 25);
    await restarted.waitFor(/resumed at round 20/);
    const job = await (await fetch(`http://127.0.0.1:${port}/api/jobs/default`)).json();
    expect(job).toMatchObject({ round: 20, version: 20, status: 'waiting' });
    const response = await fetch(`http://127.0.0.1:${port}/api/jobs/default/weights`);
    expect(response.headers.get('x-tessera-version')).toBe('20');
    const served = getCodec('f32').decode(new Uint8Array(await response.arrayBuffer()));
    const shapes = Object.fromEntries(Object.entries(served).map(([name, tensor]) => [name, tensor.shape]));
    const checkpoint = decodeCheckpoint(checkpointBytes, () => shapes);
    expect(checkpoint.state.round).toBe(20);
    const servedWeights = tensorsToArrays(served, shapes);
    for (const name of Object.keys(shapes)) expect(Array.from(servedWeights[name])).toEqual(Array.from(checkpoint.state.weights[name]));

    const rejoined = [startWorker(port, 'one'), startWorker(port, 'two')];
    await restarted.waitFor(/finished after 25 rounds/, 120_000);
    expect(await restarted.exited).toBe(0);
    const continued = roundLog().slice(20);
    expect(continued.map((line) => line.round)).toEqual([20, 21, 22, 23, 24]);
    expect(continued.map((line) => line.version)).toEqual([20, 21, 22, 23, 24]);
    expect(continued.every((line) => line.updates.length === 2)).toBe(true);
    await Promise.all(rejoined.map((worker) => stop(worker)));
  });
});
