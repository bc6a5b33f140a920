import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TabStatus } from '../browser-worker/messages.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { startScript, stopAll, until } from './helpers/processes.ts';

/**
 * Every model family trains in a browser tab too: one coordinator runs a
 * cdcgan, a ddpm and a vae job (the last two created through the API), and a
 * tab joins each.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-browser-families-'));
const ADMIN = 'families-admin';
let port = 0;
let browser: Awaited<ReturnType<typeof launchChromium>>;

beforeAll(async () => {
  port = await freePort();
  const coordinator = startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--admin-token',
    ADMIN,
    '--set',
    'id=cdcgan',
    '--set',
    'model.id=cdcgan',
    '--set',
    'model.config.width=4',
    '--set',
    'model.config.latentDim=8',
    '--set',
    'training.batchSize=2',
    '--set',
    'training.deadline=fixed',
    '--set',
    `output.dir=${outputDir}`,
  ]);
  await coordinator.waitFor(/tessera coordinator on/);
  for (const job of [
    { id: 'ddpm', model: { id: 'ddpm', config: { baseChannels: 4, timeEmbeddingDim: 8, samplingSteps: 2 } } },
    { id: 'vae', model: { id: 'vae', config: { width: 4, latentDim: 4 } } },
  ]) {
    const response = await fetch(`http://127.0.0.1:${port}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...job, training: { batchSize: 2, deadline: 'fixed' }, output: { dir: outputDir } }),
    });
    expect(response.status).toBe(201);
  }
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

const statusOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { tessera: { status(): TabStatus | undefined } }).tessera.status());

describe('model families in the browser', () => {
  it.each([
    ['cdcgan', 'webgl'],
    ['ddpm', 'wasm'],
    ['vae', 'wasm'],
  ])('a tab trains %s on %s and gets its updates accepted', async (jobId, backend) => {
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${port}/join/${jobId}?backend=${backend}`);
    const status = await until(
      () => statusOf(page),
      (s) => (s?.updatesAccepted ?? 0) >= 2,
      90_000,
      `${jobId} tab with 2 accepted updates`,
    );
    expect(status).toMatchObject({ jobId, backend, updatesRejected: 0 });
    expect(Object.values(status!.losses).every(Number.isFinite)).toBe(true);
    await page.close();
  });
});
