import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TabStatus } from '../browser-worker/messages.ts';
import { median } from '../shared/schedule/schedule.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { ROOT, startScript, stopAll, type Started, until } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

/**
 * A tab on a machine with no GPU, in Chromium with the WebGPU flag on (so
 * WebGPU and WebGL are offered, both on SwiftShader): it must pick wasm by
 * measurement, contribute accepted updates, and leave the rounds of the Node
 * worker beside it their length. Then the dashboard's headline row shows the
 * fleet. The Node worker is throttled ×5 (it rests four times as long as it
 * computes): it stands for a worker on a machine of its own, where here it
 * shares two cores with the tab. Unthrottled, the tab could only take CPU
 * from it, and every round would lengthen whatever the tab did.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-tab-calibration-'));
const ADMIN = 'tab-calibration-admin';
const artifacts = join(ROOT, 'test-artifacts');
/** Rounds of the Node worker alone that are compared with the rounds after the tab joined (the first few warm up). */
const WARM_UP_ROUNDS = 2;
const COMPARED_ROUNDS = 7;
let port = 0;
let worker: Started;
let browser: Awaited<ReturnType<typeof launchChromium>>;

interface RoundLine {
  round: number;
  applied: boolean;
  durationMs: number;
  updates: { workerId: string; samples: number; finishMs: number }[];
  failures: { workerId: string; code: string }[];
  excluded: { workerId: string; reason: string }[];
}
const roundLog = (): RoundLine[] => readRounds(join(outputDir, 'default', 'rounds.jsonl'));
const statusOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { tessera: { status(): TabStatus | undefined } }).tessera.status());

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  port = await freePort();
  const coordinator = startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--admin-token',
    ADMIN,
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'training.batchSize=32',
    '--set',
    'model.config.width=16',
    '--set',
    'output.sampleEvery=5',
  ]);
  await coordinator.waitFor(/tessera coordinator on/);
  // The page's bundle is built on its first request: start that while the Node worker starts.
  void fetch(`http://127.0.0.1:${port}/static/browser/page.js`).then((response) => response.arrayBuffer());
  // No --backend: the Node worker chooses by the same measurement as the tab.
  worker = startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--name', 'node-1', '--throttle', '5']);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('a tab without a GPU', () => {
  let tab: TabStatus;
  let tabPage: Page;
  /** Round lengths of the Node worker alone, before the tab joined, and with the tab beside it. */
  let aloneBefore: RoundLine[] = [];
  let withTab: RoundLine[] = [];

  it('picks wasm by measurement and contributes accepted updates, every round, none waiting for it', async () => {
    aloneBefore = (await until(roundLog, (rows) => rows.length >= WARM_UP_ROUNDS + COMPARED_ROUNDS, 60_000, 'rounds of the Node worker alone')).slice(
      WARM_UP_ROUNDS,
    );
    // The Node worker measured its backends too, and Dawn found no Vulkan loader without printing a native warning.
    expect(worker.output()).toMatch(/backend wasm on .* \(measured: wasm [\d.]+ ms, cpu [\d.]+ ms per probe step\)/);
    expect(worker.output()).not.toMatch(/Couldn't load Vulkan/);

    tabPage = await browser.context.newPage();
    await tabPage.setViewportSize({ width: 1000, height: 1100 });
    await tabPage.goto(`http://127.0.0.1:${port}/join`);
    tab = (await until(
      () => statusOf(tabPage),
      (s) => (s?.updatesAccepted ?? 0) >= 3 || s?.state === 'spectating' || s?.state === 'refused',
      75_000,
      'a tab with 3 accepted updates',
    ))!;
    expect(tab.state, tab.message).toBe('training');

    // WebGPU and WebGL were offered on SwiftShader and passed over as software; wasm beat the plain-JS cpu backend on the clock.
    expect(tab.backend).toBe('wasm');
    expect(tab.skipped.map((skip) => skip.name).sort()).toEqual(['webgl', 'webgpu']);
    for (const skip of tab.skipped) expect(skip.reason).toMatch(/^software (adapter|renderer) .*swiftshader/i);
    expect(tab.figures.map((figure) => figure.name)).toEqual(['wasm', 'cpu']);
    expect(tab.figures[0].msPerStep).toBeLessThan(tab.figures[1].msPerStep);
    expect(tab.speedCheck).toMatchObject({ join: true, firstShare: 32 });

    // The page says it in words and shows the figures.
    await expect.poll(() => tabPage.textContent('#backend')).toBe('wasm');
    expect(await tabPage.locator('#figures tr').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^wasm \(chosen\)[\d.]+ ms/), expect.stringMatching(/^webgpupassed over: software adapter/)]),
    );
    expect(await tabPage.textContent('#state')).toMatch(
      /^(waiting for the next round|computing an update of \d+ samples|update sent, waiting for the coordinator to take it)$/,
    );
    expect(Number(await tabPage.textContent('#contributed'))).toBeGreaterThan(0);

    // The rounds from the tab's first one on: each has its update, and none stopped waiting for it.
    const firstWithTab = roundLog().findIndex((row) => [...row.updates, ...row.failures].some((entry) => entry.workerId === tab.workerId));
    withTab = (await until(roundLog, (rows) => firstWithTab >= 0 && rows.length >= firstWithTab + COMPARED_ROUNDS, 60_000, 'rounds with the tab')).slice(
      firstWithTab,
      firstWithTab + COMPARED_ROUNDS,
    );
    expect(withTab.filter((row) => row.failures.some((failure) => failure.workerId === tab.workerId))).toEqual([]);
    // Its update is in each round's aggregate, or set aside as a verification copy (a duplicate of the other's samples).
    const tabIn = (row: RoundLine) => [...row.updates, ...row.excluded].some((update) => update.workerId === tab.workerId);
    expect(withTab.filter((row) => !(row.applied && tabIn(row)))).toEqual([]);
    tab = (await statusOf(tabPage))!;
    expect(tab.updatesRejected).toBe(0);
    await tabPage.screenshot({ path: join(artifacts, 'join-page-no-gpu.png'), fullPage: true });
  });

  it("holds no round for the tab: rounds end when the Node worker's update is in", async () => {
    expect(withTab).toHaveLength(COMPARED_ROUNDS);
    // Rounds alone again once the tab pauses (it leaves the job): with the rounds before it joined, they bracket the
    // rounds with the tab, for the log line below.
    await tabPage.click('#toggle');
    try {
      await until(
        () => statusOf(tabPage),
        (s) => s?.state === 'paused',
        30_000,
        'the paused tab',
      );
      const pausedAt = roundLog().length;
      const aloneAfter = (
        await until(roundLog, (rows) => rows.length >= pausedAt + 1 + COMPARED_ROUNDS, 60_000, 'rounds of the Node worker alone again')
      ).slice(pausedAt + 1);
      expect(aloneAfter.every((row) => row.updates.every((update) => update.workerId !== tab.workerId))).toBe(true);
      const lengths = (rows: RoundLine[]) => rows.map((row) => row.durationMs);
      // When the Node worker's update came in (rounds where it was a verification copy, left out of the log's updates, are skipped).
      const nodeFinish = (row: RoundLine) => row.updates.find((update) => update.workerId !== tab.workerId)?.finishMs ?? Number.NaN;
      const timed = withTab.filter((row) => Number.isFinite(nodeFinish(row)));
      expect(timed.length).toBeGreaterThanOrEqual(COMPARED_ROUNDS - 2);
      // How long each round stayed open after the Node worker's update came in: the time it waited for the tab.
      const waited = timed.map((row) => row.durationMs - nodeFinish(row));
      const aloneMs = (median(lengths(aloneBefore)) + median(lengths(aloneAfter))) / 2;
      console.log(
        `Node worker alone: median ${median(lengths(aloneBefore))} ms before (${lengths(aloneBefore).join(', ')}), ${median(lengths(aloneAfter))} ms after (${lengths(aloneAfter).join(', ')}); ` +
          `with the tab: median ${median(lengths(withTab))} ms (${lengths(withTab).join(', ')}), ratio ${(median(lengths(withTab)) / aloneMs).toFixed(2)}; ` +
          `Node worker's update in at ${withTab.map(nodeFinish).join(', ')} ms, rounds waited after it ${waited.join(', ')} ms; tab shares ${withTab.map((row) => row.updates.find((update) => update.workerId === tab.workerId)?.samples ?? 0).join(', ')}; ` +
          `tab ${tab.samplesPerSecond.toFixed(1)} samples/s; calibration ${tab.figures.map((figure) => `${figure.name} ${figure.msPerStep.toFixed(1)} ms`).join(', ')}; speed check ${tab.speedCheck?.reason}`,
      );
      // Not the rounds' lengths against the rounds alone: on these 2 shared cores the tab's compute takes CPU from the
      // Node worker's, and that lengthens its own part whatever the scheduler does. What the scheduler owes is not to
      // wait for the tab: a software-GPU tab held every round to its deadline (seconds) before it chose wasm. The
      // shares are sized so both finish together, so the tab is last in about half the rounds, by a little.
      expect(median(waited)).toBeLessThanOrEqual(Math.max(100, 0.25 * median(timed.map(nodeFinish))));
    } finally {
      // The tab back in the job whatever happened above: the headline test needs both workers.
      if ((await statusOf(tabPage))?.state === 'paused') await tabPage.click('#toggle');
      await until(
        () => statusOf(tabPage),
        (s) => s?.state === 'training',
        30_000,
        'the tab back',
      );
    }
  });

  it('shows on the dashboard headline: throughput, rounds per minute, workers by kind and backend', async () => {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`http://127.0.0.1:${port}/dashboard`);
    type Headline = { samplesPerSecond: number | null; roundsPerMinute: number | null; workers: number | null; mix: string };
    const state = () =>
      page.evaluate(() =>
        (
          globalThis as unknown as { tesseraDashboard: { state(): { headline: Headline; xAxis: string; chartPoints: Record<string, number> } } }
        ).tesseraDashboard.state(),
      );
    const shown = await until(state, (s) => s.headline.workers === 2 && (s.headline.samplesPerSecond ?? 0) > 0, 20_000, 'the headline with both workers');
    expect(shown.headline.mix).toBe('1 browser (wasm), 1 node (wasm)');
    expect(shown.headline.roundsPerMinute).toBeGreaterThan(0);
    await page.locator('#headline').screenshot({ path: join(artifacts, 'dashboard-headline.png') });

    // The charts switch to wall time and keep every round.
    await page.click('[data-axis="time"]');
    const switched = await state();
    expect(switched.xAxis).toBe('time');
    expect(new URL(page.url()).searchParams.get('x')).toBe('time');
    await expect.poll(async () => (await state()).chartPoints.throughput).toBeGreaterThanOrEqual(shown.chartPoints.throughput);
    await page.screenshot({ path: join(artifacts, 'dashboard-wall-time.png'), fullPage: true });
    await page.close();
  });

  it('a tab too slow for a job watches, says why in words, shows samples from the start, and holds no round', async () => {
    // A job whose newcomers get 4096 samples with 0.1 s to deliver them (the limits of both): no CPU tab anywhere can,
    // where 2048 samples in 2 s was within reach of a fast CI machine.
    const created = await fetch(`http://127.0.0.1:${port}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'slow',
        model: { id: 'dcgan', config: { width: 16 } },
        training: { batchSize: 4096, roundDeadlineMs: 100, deadlineFloorMs: 50 },
        output: { dir: outputDir },
      }),
    });
    expect(created.status).toBe(201);
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${port}/join/slow`);
    const watching = (await until(
      () => statusOf(page),
      (s) => s?.state === 'spectating' || s?.state === 'training' || s?.state === 'refused',
      60_000,
      'the speed check',
    ))!;
    expect(watching.state).toBe('spectating');
    expect(watching.speedCheck).toMatchObject({ join: false, firstShare: 4096, deadlineMs: 100 });
    expect(watching.message).toMatch(
      /for the 4096 samples a new worker gets, and a round waits only 0\.10 s: it watches instead of holding every round back \(checking again in 1 min\)$/,
    );
    expect(await page.textContent('#state')).toBe('watching: too slow to help this job right now');
    expect(await page.isVisible('#join-anyway')).toBe(true);
    // Samples from the job's current weights, drawn in the tab by its rehearsal: the job has no grid of its own yet.
    await expect.poll(() => page.isVisible('#local-samples')).toBe(true);
    // It never said hello: the job has no worker.
    const job = (await (await fetch(`http://127.0.0.1:${port}/api/jobs/slow`)).json()) as { workers: unknown[] };
    expect(job.workers).toEqual([]);
    await page.screenshot({ path: join(artifacts, 'join-page-spectator.png'), fullPage: true });
    await page.close();
  });
});
