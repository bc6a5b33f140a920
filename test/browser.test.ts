import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TabStatus } from '../browser-worker/messages.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { ROOT, startScript, stopAll, type Started, until } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

/**
 * Volunteers' tabs in real Chromium (Debian's, headless, WebGPU on
 * SwiftShader): two tabs join a running job next to a Node worker, one forced
 * to webgpu and one to wasm, and their updates count.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-browser-'));
const artifacts = join(ROOT, 'test-artifacts');
const modelConfig = { width: 8, latentDim: 16 };
let coordinator: Started;
let port = 0;
let browser: Awaited<ReturnType<typeof launchChromium>>;

interface RoundLine {
  round: number;
  applied: boolean;
  updates: { workerId: string }[];
  failures: { workerId: string; code: string }[];
}
const roundLog = (): RoundLine[] => readRounds(join(outputDir, 'default', 'rounds.jsonl'));

const statusOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { tessera: { status(): TabStatus | undefined } }).tessera.status());

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  port = await freePort();
  coordinator = startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'training.batchSize=4',
    '--set',
    'training.roundDeadlineMs=60000',
    // SwiftShader's first WebGPU step compiles its shaders for seconds: a deadline learned from the wasm workers would cut it off.
    '--set',
    'training.deadline=fixed',
    '--set',
    `model.config.width=${modelConfig.width}`,
    '--set',
    `model.config.latentDim=${modelConfig.latentDim}`,
  ]);
  await coordinator.waitFor(/tessera coordinator on/);
  startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', 'node-1']);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('browser worker', () => {
  const tabs = new Map<string, Page>();

  // A timeout beyond the 150 s wait for the tabs inside: SwiftShader's first WebGPU steps take most of it on a busy machine.
  it('two tabs, on webgpu and on wasm, join the job and get their updates accepted', async () => {
    for (const backend of ['webgpu', 'wasm']) {
      const page = await browser.context.newPage();
      await page.goto(`http://127.0.0.1:${port}/join?backend=${backend}`);
      tabs.set(backend, page);
    }
    for (const [backend, page] of tabs) {
      const status = await until(
        () => statusOf(page),
        (s) => (s?.updatesAccepted ?? 0) >= 2,
        150_000,
        `${backend} tab with 2 accepted updates`,
      );
      expect(status).toMatchObject({ backend, state: 'training', updatesRejected: 0 });
      // The page shows its backend, its device and its speed.
      await expect.poll(() => page.textContent('#backend')).toBe(backend);
      expect(Number(await page.textContent('#speed'))).toBeGreaterThan(0);
      expect(await page.textContent('#device')).not.toBe('…');
      await page.screenshot({ path: join(artifacts, `join-page-${backend}.png`) });
    }
    expect((await statusOf(tabs.get('webgpu')!))!.device).toMatch(/swiftshader/i);

    // The round log shows both tabs' contributions next to the Node worker's.
    const contributors = new Set(roundLog().flatMap((line) => line.updates.map((update) => update.workerId)));
    for (const page of tabs.values()) expect(contributors).toContain((await statusOf(page))!.workerId);
    expect(coordinator.output()).toMatch(/joined \(browser, webgpu, .*tab \(webgpu\)\)/);
    expect(coordinator.output()).toMatch(/joined \(browser, wasm, .*tab \(wasm\)\)/);
  }, 180_000);

  it('computes the same gradients on webgpu and wasm as Node on the cpu backend (relative error < 1e-3)', async () => {
    const config = dcgan.parseConfig(modelConfig);
    await tf.setBackend('cpu');
    const trainer = dcgan.createTrainer(config);
    const weights = trainer.initialWeights(7);
    trainer.setWeights(weights);
    const batch = loadMnist().batch([3, 1003, 2003, 5003]);
    const noise = trainer.drawNoise(batch.count, 11);
    const reference = await trainer.lossAndGrads(batch, noise);
    trainer.dispose();
    const plain = (arrays: Record<string, Float32Array>) => Object.fromEntries(Object.entries(arrays).map(([name, values]) => [name, Array.from(values)]));
    const request = {
      modelId: 'dcgan',
      modelConfig: config,
      weights: plain(weights),
      batch: { count: batch.count, images: Array.from(batch.images), labels: Array.from(batch.labels) },
      noise: plain(noise),
    };

    for (const [backend, page] of tabs) {
      const result = (await page.evaluate((payload) => {
        const toArrays = (record: Record<string, number[]>) =>
          Object.fromEntries(Object.entries(record).map(([name, values]) => [name, Float32Array.from(values)]));
        const tessera = (
          globalThis as unknown as { tessera: { gradients(request: object): Promise<{ grads?: Record<string, Float32Array>; error?: string }> } }
        ).tessera;
        return tessera
          .gradients({
            ...payload,
            weights: toArrays(payload.weights),
            noise: toArrays(payload.noise),
            batch: { count: payload.batch.count, images: Float32Array.from(payload.batch.images), labels: Int32Array.from(payload.batch.labels) },
          })
          .then((answer) => ({
            error: answer.error,
            grads: answer.grads && Object.fromEntries(Object.entries(answer.grads).map(([name, values]) => [name, Array.from(values)])),
          }));
      }, request)) as { error?: string; grads?: Record<string, number[]> };
      expect(result.error).toBeUndefined();
      for (const [name, expected] of Object.entries(reference.grads)) {
        const actual = result.grads![name];
        let difference = 0;
        let norm = 0;
        for (let i = 0; i < expected.length; i++) {
          difference += (actual[i] - expected[i]) ** 2;
          norm += expected[i] ** 2;
        }
        expect(Math.sqrt(difference / norm), `${backend} ${name}`).toBeLessThan(1e-3);
      }
    }
  });

  it('closing a tab mid-round does not stall the job: the round completes from the others', async () => {
    const page = tabs.get('wasm')!;
    const { workerId } = (await statusOf(page))!;
    const roundsBefore = roundLog().length;
    await page.close();
    // Later rounds keep closing (the Node worker and the webgpu tab carry on), and none waits for the closed tab.
    await until(
      async () => roundLog().length,
      (count) => count >= roundsBefore + 5,
      120_000,
      'five more rounds',
    );
    const after = roundLog().slice(roundsBefore);
    expect(after.every((line) => line.applied)).toBe(true);
    // The round log is written off the round's path, so when it is read before the close it may lack the round that
    // had just closed: the first two rounds of `after` may carry the tab's update, and one of the first three may count
    // it as failed (LEFT: the round open at the close, or one opened in the moment before the coordinator saw it; or
    // DEADLINE on a loaded machine). From the fourth on, nothing of it: no round waits for it.
    const mentions = (line: RoundLine) => [...line.updates, ...line.failures].some((entry) => entry.workerId === workerId);
    expect(after.slice(2).some((line) => line.updates.some((update) => update.workerId === workerId))).toBe(false);
    expect(after.filter((line) => line.failures.some((failure) => failure.workerId === workerId)).length).toBeLessThanOrEqual(1);
    expect(after.slice(3).some(mentions)).toBe(false);
    expect(coordinator.output()).toMatch(new RegExp(`worker ${workerId} left`));
  });
});
