import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { TabStatus } from '../browser-worker/messages.ts';
import { writeShapeFolder } from './fixtures/image-folder.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { startScript, stopAll, until } from './helpers/processes.ts';
import { waitForRounds } from './helpers/round-log.ts';

/**
 * A job on a folder of the user's own images, as a user points Tessera at
 * one: 36 seeded 32x32 RGB PNGs of three shapes, one subfolder per class.
 * The coordinator converts the folder once (into an empty cache), cuts the
 * job's shards and writes them there by hash; its two local Node workers
 * read them from that cache, and a browser tab fetches the ones it is
 * assigned from the coordinator by hash. The conditional DCGAN is built for
 * 32x32x3 with three classes, and its sample grids come out in RGB at that size.
 */

const root = mkdtempSync(join(tmpdir(), 'tessera-images-'));
const folder = writeShapeFolder(join(root, 'shapes'), { perClass: 12, size: 32, seed: 5 });
const outputDir = join(root, 'runs');
const cache = join(root, 'cache');
let browser: Awaited<ReturnType<typeof launchChromium>>;

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(root, { recursive: true, force: true });
});

describe('a job on a folder of 32x32 RGB images', () => {
  it('trains rounds end to end with two Node workers and a browser tab, and draws RGB grids of 32x32 samples', async () => {
    const port = await freePort();
    const settings = [
      'dataset.id=images',
      `dataset.path=${folder}`,
      'dataset.shape=[32,32,3]',
      'model.id=cdcgan',
      'model.config.width=8',
      'model.config.latentDim=16',
      'training.batchSize=8',
      `output.dir=${outputDir}`,
      'output.sampleEvery=3',
      'output.evalEvery=0',
    ];
    const coordinator = startScript(
      'coordinator/main.ts',
      ['--local-workers', '2', '--worker-backend', 'wasm', '--port', String(port), '--host', '127.0.0.1', ...settings.flatMap((setting) => ['--set', setting])],
      { TESSERA_CACHE: cache },
    );
    await coordinator.waitFor(/job default: cdcgan on images/);
    await coordinator.waitFor(/tessera coordinator on/);

    // The folder converted once, and the job's 16 shards kept under their content hashes.
    const shardFiles = readdirSync(join(cache, 'datasets', 'shards'));
    expect(shardFiles).toHaveLength(16);
    for (const name of shardFiles) expect(name).toMatch(/^[0-9a-f]{64}$/);
    expect(readdirSync(join(cache, 'datasets')).filter((name) => name.startsWith('images-v1-'))).toHaveLength(1);

    browser = await launchChromium();
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${port}/join`);
    const status = () => page.evaluate(() => (globalThis as unknown as { tessera: { status(): TabStatus | undefined } }).tessera.status());
    // The tab times the job's model at 32x32x3 on the job's weights first; rounds this small are quick enough that it
    // may choose to watch rather than slow them down, and then it is asked to join anyway.
    const checked = (await until(status, (s) => s?.state === 'training' || s?.state === 'spectating' || s?.state === 'refused', 60_000, 'a speed check'))!;
    expect(checked.speedCheck?.samplesPerSecond, checked.message).toBeGreaterThan(0);
    if (checked.state === 'spectating') await page.click('#join-anyway');
    const tab = (await until(status, (s) => (s?.updatesAccepted ?? 0) >= 2 || s?.state === 'refused', 60_000, 'a tab with 2 accepted updates'))!;
    expect(tab.state, tab.message).toBe('training');
    expect(tab.updatesRejected).toBe(0);

    const { rounds, workers } = await waitForRounds(join(outputDir, 'default', 'rounds.jsonl'), 7, 60_000);
    expect(rounds.every((row) => row.applied)).toBe(true);
    expect(workers.size).toBe(3);
    expect(workers.has(tab.workerId)).toBe(true);

    // The grid: 64 samples in 8 columns of 32x32 images with 1-pixel gutters, an RGB PNG (colour type 2), in colour.
    const bytes = readFileSync(join(outputDir, 'default', 'samples', 'round-000006.png'));
    expect(bytes[25]).toBe(2);
    const png = PNG.sync.read(bytes);
    expect([png.width, png.height]).toEqual([8 * (32 + 1) + 1, 8 * (32 + 1) + 1]);
    let coloured = 0;
    for (let i = 0; i < png.data.length; i += 4) if (png.data[i] !== png.data[i + 1] || png.data[i + 1] !== png.data[i + 2]) coloured += 1;
    expect(coloured).toBeGreaterThan(1000);
  });
});
