import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QualityRow } from '../shared/api/round-log.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { ROOT, startScript, stopAll, until } from './helpers/processes.ts';
import { readQuality, readRounds } from './helpers/round-log.ts';

/**
 * Quality during training, end to end: a real coordinator scores a small
 * DCGAN every 2 training steps in its scoring thread while a local worker
 * trains it; the quality lines land in rounds.jsonl between the rounds, the
 * figures in /metrics and the job API, and the dashboard in Chromium charts them.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-quality-'));
const roundLog = join(outputDir, 'default', 'rounds.jsonl');
const artifacts = join(ROOT, 'test-artifacts');
let port = 0;
let browser: Awaited<ReturnType<typeof launchChromium>>;

interface QualityState {
  points: number;
  series: number;
  latestRound: number | null;
  frechet: number | null;
  text: string;
}
const qualityOf = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { tesseraDashboard: { state(): { quality: QualityState; xAxis: string } } }).tesseraDashboard.state());

const api = async (path: string) => {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  expect(response.status, path).toBe(200);
  return response;
};

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  port = await freePort();
  const coordinator = startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'training.batchSize=8',
    '--set',
    'model.config.width=8',
    '--set',
    'model.config.latentDim=16',
    '--set',
    'output.evalEvery=2',
    // Enough samples that a scoring spans several rounds of this small model: rounds must close meanwhile.
    '--set',
    'output.evalSamples=200',
  ]);
  // Chromium starts while the coordinator does.
  const launching = launchChromium();
  await coordinator.waitFor(/tessera coordinator on/);
  startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', 'local-1']);
  browser = await launching;
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('quality during training', () => {
  it('writes quality lines beside the rounds, off their path, and shows them in /metrics, the job API and the dashboard', async () => {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // The page's first load bundles the dashboard (esbuild): it goes on while the first scorings run.
    const loading = page.goto(`http://127.0.0.1:${port}/dashboard`);

    const lines = await until(
      () => readQuality(roundLog),
      (rows) => rows.length >= 3,
      40_000,
      'three quality lines in rounds.jsonl',
    );
    const rounds = readRounds(roundLog);
    for (const row of lines) {
      expect(row).toMatchObject({ kind: 'quality', dataset: 'mnist', count: 200 });
      // Due every 2 training steps; the weights scored are a round's (a round that applied nothing takes no step).
      expect(row.version % 2).toBe(0);
      expect(rounds.find((round) => round.round === row.round)).toMatchObject({ applied: true, version: row.version - 1 });
      expect(row.frechet).toBeGreaterThan(0);
      expect(row.frechetFloor).toBeGreaterThan(0);
      for (const share of [row.precision, row.recall, row.recognisable, row.coverageEntropy]) expect(share >= 0 && share <= 1, JSON.stringify(row)).toBe(true);
    }
    expect(lines.map((row) => row.wallMs)).toEqual([...lines.map((row) => row.wallMs)].sort((a, b) => a - b));
    // Off the round's path: rounds closed while scorings ran, and due scorings that found the thread busy were skipped, not queued.
    const closedDuring = rounds.filter((round) =>
      lines.some((row) => Date.parse(round.closedAt) > Date.parse(row.closedAt) && Date.parse(round.closedAt) < Date.parse(row.closedAt) + row.ms),
    );
    expect(closedDuring.length).toBeGreaterThan(0);
    const versions = lines.map((row) => row.version);
    expect(new Set(versions).size).toBe(versions.length);

    // The metrics and the API show the latest scoring: read the API on both sides of the scrape, so all describe the same one.
    const { metrics, job } = await until(
      async () => {
        const before = (await (await api('/api/jobs/default')).json()) as { quality: { latest: QualityRow } };
        const metrics = await (await api('/metrics')).text();
        const job = (await (await api('/api/jobs/default')).json()) as {
          quality: { latest: QualityRow; scored: number; skipped: number; failed: number; running: boolean };
        };
        return { metrics, job, same: before.quality.latest.version === job.quality.latest.version };
      },
      (probe) => probe.same,
      20_000,
      'the API and /metrics on the same scoring',
    );
    const latest = job.quality.latest;
    const gauge = (name: string) => Number(metrics.match(new RegExp(`^${name}\\{job_id="default"\\} (\\S+)$`, 'm'))?.[1]);
    expect(gauge('tessera_quality_frechet')).toBeCloseTo(latest.frechet, 6);
    expect(gauge('tessera_quality_frechet_floor')).toBeCloseTo(latest.frechetFloor, 6);
    expect(gauge('tessera_quality_recognisable')).toBeCloseTo(latest.recognisable, 6);
    expect(gauge('tessera_quality_precision')).toBeCloseTo(latest.precision, 6);
    expect(gauge('tessera_quality_version')).toBe(latest.version);
    const scored = Number(metrics.match(/^tessera_quality_evaluations_total\{job_id="default",outcome="scored"\} (\d+)$/m)?.[1]);
    expect(scored).toBeGreaterThanOrEqual(3);
    expect(job.quality).toMatchObject({ failed: 0 });
    expect(job.quality.scored).toBeGreaterThanOrEqual(scored);
    // The list shows the same figures, and /quality the lines of the log.
    const list = (await (await api('/api/jobs')).json()) as { jobs: { quality: { latest: QualityRow } }[] };
    expect(list.jobs[0].quality.latest.version).toBeGreaterThanOrEqual(latest.version);
    const history = (await (await api('/api/jobs/default/quality')).json()) as { quality: QualityRow[] };
    expect(history.quality.slice(0, lines.length)).toEqual(lines);

    // The dashboard charts every scoring, live, against rounds and against wall time.
    await loading;
    const shown = await until(
      () => qualityOf(page),
      (s) => s.quality.points >= 3 && s.quality.latestRound !== null,
      20_000,
      'three scorings on the quality chart',
    );
    expect(shown.quality.series).toBe(3);
    expect(shown.quality.text).toMatch(/^After round [\d,]+ \(.*\): Fréchet [\d.]+ \([\d.]+× the floor of [\d.]+\), recognisable [\d.]+%/);
    await page.click('[data-axis="time"]');
    const timed = await qualityOf(page);
    expect(timed.xAxis).toBe('time');
    expect(timed.quality.points).toBeGreaterThanOrEqual(shown.quality.points);
    await page.click('[data-axis="round"]');
    await page.locator('#quality-card').scrollIntoViewIfNeeded();
    await page.locator('#quality-card').screenshot({ path: join(artifacts, 'dashboard-quality.png') });
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
