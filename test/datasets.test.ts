import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { TabStatus } from '../browser-worker/messages.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { startScript, stopAll, until } from './helpers/processes.ts';
import { waitForRounds } from './helpers/round-log.ts';

/**
 * `npm start -- --set dataset.id=fashion-mnist` as a user runs it: the
 * coordinator, its two local Node workers (each loading the dataset from the
 * binary cache) and a browser tab (fetching the examples it is assigned)
 * train the default model on clothes, and the sample grids come out. The
 * coordinator converts the package to the (empty) cache before it starts its
 * workers, which then read the binary file.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-datasets-'));
const cache = mkdtempSync(join(tmpdir(), 'tessera-cache-'));
let browser: Awaited<ReturnType<typeof launchChromium>>;

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

describe('a job on fashion-mnist', () => {
  it('trains rounds end to end with two Node workers and a browser tab, and writes its sample grids', async () => {
    const port = await freePort();
    const coordinator = startScript(
      'coordinator/main.ts',
      [
        '--local-workers',
        '2',
        '--worker-backend',
        'wasm',
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--set',
        'dataset.id=fashion-mnist',
        '--set',
        `output.dir=${outputDir}`,
        '--set',
        'output.sampleEvery=4',
        '--set',
        'output.evalEvery=0',
        '--set',
        'model.config.width=8',
        '--set',
        'model.config.latentDim=16',
        '--set',
        'training.batchSize=16',
      ],
      { TESSERA_CACHE: cache },
    );
    await coordinator.waitFor(/job default: dcgan on fashion-mnist/);
    await coordinator.waitFor(/tessera coordinator on/);
    browser = await launchChromium();
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${port}/join`);
    const status = () => page.evaluate(() => (globalThis as unknown as { tessera: { status(): TabStatus | undefined } }).tessera.status());
    const tab = (await until(status, (s) => (s?.updatesAccepted ?? 0) >= 2 || s?.state === 'refused', 90_000, 'a tab with 2 accepted updates'))!;
    expect(tab.state, tab.message).toBe('training');
    expect(tab.updatesRejected).toBe(0);

    const { rounds, workers } = await waitForRounds(join(outputDir, 'default', 'rounds.jsonl'), 10, 60_000);
    expect(rounds.every((row) => row.applied)).toBe(true);
    expect(workers.size).toBe(3);
    expect(workers.has(tab.workerId)).toBe(true);

    // The grid: 64 samples in 8 columns of 28x28 images with 1-pixel gutters, grey (every pixel's channels equal).
    const png = PNG.sync.read(readFileSync(join(outputDir, 'default', 'samples', 'round-000008.png')));
    expect(png.width).toBe(8 * (28 + 1) + 1);
    for (let i = 0; i < png.data.length; i += 4) expect(png.data[i + 1] === png.data[i] && png.data[i + 2] === png.data[i]).toBe(true);
  });
});
