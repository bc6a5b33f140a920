import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TabStatus } from '../browser-worker/messages.ts';
import type { RoundRow } from '../shared/api/round-log.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { startScript, stopAll, type Started, until } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

/**
 * Honest workers on different backends are never quarantined: a Node worker
 * on wasm and a Chromium tab on WebGPU (SwiftShader) train one job with half
 * of the assignments given twice, so most rounds compare a Node gradient with
 * a browser gradient of the same examples and seed. Every pair must agree
 * within training.verification.tolerance. TESSERA_VERIFY_ROUNDS sets the
 * length (12 here; `TESSERA_VERIFY_ROUNDS=300` is the full clean run).
 * The job runs without a round budget: a finished job shuts its coordinator down.
 */

const ROUNDS = Number(process.env.TESSERA_VERIFY_ROUNDS ?? 12);
const outputDir = mkdtempSync(join(tmpdir(), 'tessera-verify-browser-'));
let coordinator: Started;
let port = 0;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

const roundLog = (): RoundRow[] => readRounds(join(outputDir, 'default', 'rounds.jsonl'));
const statusOf = () => page.evaluate(() => (globalThis as unknown as { tessera: { status(): TabStatus | undefined } }).tessera.status());

beforeAll(async () => {
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
    'training.minWorkers=2',
    '--set',
    'training.batching=equal',
    // SwiftShader compiles its shaders for seconds at the first step: a learned deadline would cut the tab off.
    '--set',
    'training.deadline=fixed',
    '--set',
    'training.roundDeadlineMs=120000',
    '--set',
    'training.aggregator=trimmed-mean',
    '--set',
    'training.verification.duplicateShare=0.5',
    '--set',
    'model.config.width=8',
    '--set',
    'model.config.latentDim=16',
  ]);
  await coordinator.waitFor(/tessera coordinator on/);
  startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', 'node-wasm']);
  browser = await launchChromium();
  page = await browser.context.newPage();
  await page.goto(`http://127.0.0.1:${port}/join?backend=webgpu`);
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('verification across backends', () => {
  it(
    `a Node worker (wasm) and a browser tab (webgpu): ${ROUNDS} rounds, every duplicate pair agrees, nobody quarantined`,
    async () => {
      await until(
        () => statusOf(),
        (status) => status?.backend === 'webgpu' && status.workerId !== '',
        60_000,
        'the tab on webgpu',
      );
      const rows = await until(
        () => roundLog(),
        (log) => log.filter((row) => row.applied).length >= ROUNDS,
        ROUNDS * 15_000,
        `${ROUNDS} rounds`,
      );
      const tab = (await statusOf())!;
      const pairs = rows.flatMap((row) => row.verification);
      const crossBackend = pairs.filter((pair) => [pair.original, pair.copy].includes(tab.workerId));
      const sorted = [...crossBackend].sort((a, b) => a.distance - b.distance);
      process.stdout.write(
        `${crossBackend.length} Node/browser pairs compared; distance median ${sorted[sorted.length >> 1]?.distance.toExponential(2)}, max ${sorted.at(-1)?.distance.toExponential(2)} (${sorted.at(-1)?.tensor})\n`,
      );
      expect(crossBackend.length).toBeGreaterThanOrEqual(Math.min(5, ROUNDS / 4));
      expect(pairs.every((pair) => pair.outcome === 'agree')).toBe(true);
      expect(rows.flatMap((row) => row.excluded).every((exclusion) => exclusion.reason === 'duplicate')).toBe(true);

      const job = await (await fetch(`http://127.0.0.1:${port}/api/jobs/default`)).json();
      const workers = job.workers as { id: string; kind: string; trust: number; quarantined: boolean }[];
      expect(workers.map((worker) => worker.kind).sort()).toEqual(['browser', 'node']);
      for (const worker of workers) expect(worker, worker.id).toMatchObject({ quarantined: false });
      for (const worker of workers) expect(worker.trust).toBeGreaterThan(0.9);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/tessera_quarantined_workers\{job_id="default",state="quarantined"\} 0/);
      expect(coordinator.output()).not.toMatch(/quarantined|referee:/);
    },
    ROUNDS * 15_000 + 120_000,
  );
});
