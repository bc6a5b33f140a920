import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { unpack } from '../shared/codec/packr.ts';
import { freePort } from './helpers/nats-server.ts';
import { startScript, stopAll } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

/**
 * Every model family through the same distributed pipeline: a coordinator and
 * two worker processes train a few rounds; losses fall, and no tensor leaks
 * on the workers or the coordinator.
 */

interface RoundLine {
  round: number;
  applied: boolean;
  losses: Record<string, number>;
  coordinatorTensors: number;
  updates: { workerId: string; workerTensors?: number }[];
}

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-families-'));
afterEach(stopAll);
afterAll(() => rmSync(outputDir, { recursive: true, force: true }));

async function train(jobId: string, rounds: number, settings: string[]): Promise<RoundLine[]> {
  const port = await freePort();
  const coordinator = startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--rounds',
    String(rounds),
    '--set',
    `id=${jobId}`,
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'training.minWorkers=2',
    // Every round must hold both workers' updates: no verification copies (a copy's samples count once).
    '--set',
    'training.verification.duplicateShare=0',
    ...settings.flatMap((setting) => ['--set', setting]),
  ]);
  await coordinator.waitFor(/tessera coordinator on/);
  for (const name of ['one', 'two']) startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', name, '--quiet']);
  await coordinator.waitFor(new RegExp(`finished after ${rounds} rounds`), 240_000);
  expect(await coordinator.exited).toBe(0);
  return readRounds(join(outputDir, jobId, 'rounds.jsonl'));
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/** Tensor counts must not grow once the first round has built everything. */
function expectNoLeak(rounds: RoundLine[]): void {
  const coordinator = rounds.slice(2).map((line) => line.coordinatorTensors);
  expect(new Set(coordinator).size, `coordinator tensors ${coordinator}`).toBe(1);
  for (const workerId of new Set(rounds.flatMap((line) => line.updates.map((update) => update.workerId)))) {
    const counts = rounds.slice(2).flatMap((line) => line.updates.filter((update) => update.workerId === workerId).map((update) => update.workerTensors!));
    expect(new Set(counts).size, `worker ${workerId} tensors ${counts}`).toBe(1);
  }
}

describe('model families', () => {
  it('cdcgan trains on two workers (D loss falls from chance), and exports a labelled synthetic dataset', async () => {
    // No spectral norm in D here: it keeps D's loss near chance for far more than 16 rounds, and the fall is what says
    // the two workers' gradients trained it.
    const rounds = await train('cdcgan', 16, [
      'model.id=cdcgan',
      'model.config.width=8',
      'model.config.discriminatorNorm=none',
      'model.config.latentDim=16',
      'training.batchSize=16',
      'optimizers.discriminator.learningRate=0.001',
      'optimizers.generator.learningRate=0.001',
    ]);
    expect(rounds.every((line) => line.applied && line.updates.length === 2)).toBe(true);
    // log 4 = 1.386 is a discriminator that cannot tell real from fake at all.
    expect(rounds[0].losses.d).toBeCloseTo(Math.log(4), 1);
    expect(mean(rounds.slice(-4).map((line) => line.losses.d))).toBeLessThan(rounds[0].losses.d - 0.1);
    expectNoLeak(rounds);

    const out = join(outputDir, 'synthetic');
    const exporter = startScript('coordinator/export-dataset.ts', ['--job-dir', join(outputDir, 'cdcgan'), '--per-class', '3', '--out', out]);
    expect(await exporter.exited).toBe(0);
    const labels = readFileSync(join(out, 'labels.csv'), 'utf8').trim().split('\n');
    expect(labels[0]).toBe('file,label,class');
    expect(labels).toHaveLength(31);
    // MNIST names no classes: a folder per digit, as an images dataset would read back.
    expect(labels[1]).toBe('0/00000.png,0,0');
    expect(labels.at(-1)).toBe('9/00002.png,9,9');
    for (const line of labels.slice(1)) expect(existsSync(join(out, line.split(',')[0]))).toBe(true);
    const dataset = unpack(readFileSync(join(out, 'dataset.msgpack'))) as { shape: number[]; images: Uint8Array; labels: Uint8Array };
    expect(dataset.shape).toEqual([30, 28, 28, 1]);
    expect(dataset.images.byteLength).toBe(30 * 784 * 4);
    expect(Array.from(new Int32Array(Uint8Array.from(dataset.labels).buffer))).toEqual(Array.from({ length: 30 }, (_, i) => Math.floor(i / 3)));
  });

  it('vae trains on two workers: its loss falls', async () => {
    const rounds = await train('vae', 16, ['model.id=vae', 'training.batchSize=16', 'optimizers.vae.learningRate=0.002']);
    expect(rounds.every((line) => line.applied && line.updates.length === 2)).toBe(true);
    expect(mean(rounds.slice(-4).map((line) => line.losses.loss))).toBeLessThan(mean(rounds.slice(0, 4).map((line) => line.losses.loss)));
    expectNoLeak(rounds);
  });

  it('ddpm trains on two workers: its denoising loss falls, with EMA samples on the coordinator; it cannot export labelled data, and says why', async () => {
    const rounds = await train('ddpm', 20, [
      'model.id=ddpm',
      'model.config.baseChannels=8',
      'model.config.timeEmbeddingDim=16',
      'model.config.samplingSteps=5',
      'training.batchSize=16',
      'optimizers.denoiser.learningRate=0.002',
      'output.sampleEvery=10',
    ]);
    expect(rounds.every((line) => line.applied && line.updates.length === 2)).toBe(true);
    expect(mean(rounds.slice(-5).map((line) => line.losses.mse))).toBeLessThan(mean(rounds.slice(0, 3).map((line) => line.losses.mse)) * 0.8);
    expectNoLeak(rounds);
    expect(existsSync(join(outputDir, 'ddpm', 'samples', 'round-000020.png'))).toBe(true);
    // An unconditional family has no labels to export (a job of its own would only spend ~9 s of start-ups on this).
    const exporter = startScript('coordinator/export-dataset.ts', ['--job-dir', join(outputDir, 'ddpm'), '--per-class', '3']);
    expect(await exporter.exited).toBe(1);
    expect(exporter.output()).toMatch(/not class-conditional/);
  });

  it('cddpm (class-conditional, classifier-free guidance) trains and exports a labelled dataset', async () => {
    const rounds = await train('cddpm', 10, [
      'model.id=cddpm',
      'model.config.baseChannels=8',
      'model.config.timeEmbeddingDim=16',
      'model.config.samplingSteps=3',
      'training.batchSize=16',
      'optimizers.denoiser.learningRate=0.002',
    ]);
    expect(rounds.every((line) => line.applied)).toBe(true);
    expectNoLeak(rounds);
    const out = join(outputDir, 'synthetic-cddpm');
    const exporter = startScript('coordinator/export-dataset.ts', ['--job-dir', join(outputDir, 'cddpm'), '--per-class', '2', '--out', out]);
    expect(await exporter.exited).toBe(0);
    expect(readFileSync(join(out, 'labels.csv'), 'utf8').trim().split('\n')).toHaveLength(21);
  });
});
