import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../coordinator/api/openapi.ts';
import type { JobDescription } from '../shared/api/jobs.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { keyMismatches } from './helpers/openapi-keys.ts';
import { ROOT, startScript, stopAll, until } from './helpers/processes.ts';

/**
 * The dashboard in real Chromium, on a coordinator with a read token and two
 * Node workers training: its charts, worker table and sample grid fill from
 * the event stream, and what it shows agrees with the coordinator's API.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-dashboard-'));
const artifacts = join(ROOT, 'test-artifacts');
const READ_TOKEN = 'dashboard-read-token';
let port = 0;
let browser: Awaited<ReturnType<typeof launchChromium>>;

/** What `tesseraDashboard.state()` returns (dashboard/dashboard.ts). */
interface DashboardState {
  jobId: string | null;
  status: string;
  connection: string;
  round: number | null;
  lastRound: number | null;
  workersConnected: number | null;
  samplesPerSecond: number | null;
  chartPoints: Record<'throughput' | 'losses' | 'participation' | 'traffic', number>;
  chartSeries: Record<'throughput' | 'losses' | 'participation' | 'traffic', number>;
  tableRows: number;
  sampleImage: { round: number | null; naturalWidth: number };
}

const stateOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { tesseraDashboard: { state(): DashboardState } }).tesseraDashboard.state());

async function getJob(): Promise<JobDescription> {
  const response = await fetch(`http://127.0.0.1:${port}/api/jobs/default`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as JobDescription;
}

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  port = await freePort();
  const coordinator = startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--read-token',
    READ_TOKEN,
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'training.batchSize=4',
    '--set',
    'model.config.width=8',
    '--set',
    'model.config.latentDim=16',
    '--set',
    'output.sampleEvery=2',
  ]);
  await coordinator.waitFor(/tessera coordinator on/);
  for (const name of ['node-1', 'node-2']) startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', name]);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('dashboard', () => {
  it('fills its charts, worker table and sample grid live, and agrees with the API', async () => {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    // No job in the path: the dashboard takes the first job, and passes its token on to the API and the event stream.
    await page.goto(`http://127.0.0.1:${port}/dashboard?token=${READ_TOKEN}`);

    const first = await until(
      () => stateOf(page),
      (s) => s.workersConnected === 2 && s.chartPoints.throughput >= 2,
      60_000,
      'two workers and two rounds on the dashboard',
    );
    expect(first).toMatchObject({ jobId: 'default', connection: 'live', status: 'running', tableRows: 2 });

    // The charts keep growing from the event stream, one series per worker next to the aggregate.
    const later = await until(
      () => stateOf(page),
      (s) => Object.entries(s.chartPoints).every(([chart, points]) => points >= first.chartPoints[chart as keyof DashboardState['chartPoints']] + 3),
      30_000,
      'three more rounds on every chart',
    );
    expect(later.chartSeries).toEqual({ throughput: 3, losses: 2, participation: 3, traffic: 1 });

    // Read the API on both sides of the page so that all three describe the same last round.
    const { shown, job } = await until(
      async () => {
        const before = await getJob();
        const shown = await stateOf(page);
        const job = await getJob();
        return { shown, job, same: before.lastRound?.round === shown.lastRound && job.lastRound?.round === shown.lastRound };
      },
      (probe) => probe.same,
      20_000,
      'the page and the API on the same round',
    );
    expect(shown.workersConnected).toBe(job.workers.filter((worker) => worker.connected).length);
    expect(shown.tableRows).toBe(job.workers.length);
    expect(Math.abs(shown.samplesPerSecond! - job.lastRound!.samplesPerSecond)).toBeLessThanOrEqual(0.05 + 1e-9);
    expect(shown.samplesPerSecond).toBeGreaterThan(0);
    // A running job, with its workers and a closed round, has the keys /api/openapi.json names.
    expect(keyMismatches(openApiDocument, 'Job', job)).toEqual([]);

    const samples = await until(
      () => stateOf(page),
      (s) => s.sampleImage.naturalWidth > 0,
      20_000,
      'a loaded sample grid',
    );
    expect(samples.sampleImage.round).toBeGreaterThan(0);
    expect(await page.locator('#workers tr td:first-child').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringContaining('node-1'), expect.stringContaining('node-2')]),
    );

    await page.locator('#config-details').evaluate((details) => ((details as HTMLDetailsElement).open = true));
    expect(JSON.parse((await page.textContent('#config'))!)).toMatchObject({ id: 'default', training: { batchSize: 4 }, output: { sampleEvery: 2 } });
    await page.locator('#config-details').evaluate((details) => ((details as HTMLDetailsElement).open = false));
    await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
    await page.close();
  });

  it('without the read token, says why instead of showing nothing', async () => {
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${port}/dashboard/default`);
    await until(
      () => stateOf(page),
      (s) => s.connection === 'closed',
      15_000,
      'the refused event stream',
    );
    await expect.poll(() => page.textContent('#message')).toMatch(/token/);
    await page.close();
  });
});
