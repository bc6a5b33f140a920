import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TabStatus } from '../browser-worker/messages.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { loadModelModules } from '../runtime/node/model-modules.ts';
import { checkModel } from '../shared/models/admission.ts';
import { listModels } from '../shared/models/registry.ts';
import { launchChromium } from './helpers/browser.ts';
import { freePort } from './helpers/nats-server.ts';
import { ROOT, startScript, stopAll, until } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

/**
 * Model families users bring as modules (--model-module): the contract's
 * checks run on every registered family — loading the example module is what
 * enrols it — a module that breaks data parallelism is refused naming the
 * check, and a job on the example module trains with a Node worker and a tab.
 */

const EXAMPLE = join(ROOT, 'docs', 'examples', 'mlp-gan.ts');
const outputDir = mkdtempSync(join(tmpdir(), 'tessera-model-modules-'));
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;

beforeAll(async () => {
  await selectNodeBackend('wasm');
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('model modules', () => {
  it('the example module loads and enrols: every registered family passes the contract checks', async () => {
    const [loaded] = await loadModelModules([EXAMPLE], { admit: true });
    expect(loaded.spec.id).toBe('mlp-gan');
    const families = listModels().map((spec) => spec.id);
    expect(families).toEqual(['dcgan', 'cdcgan', 'vae', 'ddpm', 'cddpm', 'mlp-gan']);
    for (const spec of listModels()) {
      const checks = await checkModel(spec, spec.defaults);
      expect(
        checks.map((check) => check.name),
        spec.id,
      ).toEqual(['networks', 'gradients', 'losses', 'data parallelism', 'samples']);
      expect(
        checks.filter((check) => !check.passed),
        spec.id,
      ).toEqual([]);
    }
  });

  it('a module with batch norm across the batch is refused, naming the failed check', async () => {
    const refused = loadModelModules([join(ROOT, 'test', 'fixtures', 'batch-norm-gan.ts')], { admit: true });
    await expect(refused).rejects.toMatchObject({ code: 'INVALID_CONFIG', field: 'model.module' });
    await expect(refused).rejects.toThrow(/model batch-norm-gan refused: check "data parallelism" failed: .*largest relative error [\d.e+-]+ \(d_/);
    expect(listModels().map((spec) => spec.id)).not.toContain('batch-norm-gan');
  });

  it('a module that exports no ModelSpec is refused with what is missing', async () => {
    await expect(loadModelModules([join(ROOT, 'test', 'helpers', 'round-log.ts')], { admit: true })).rejects.toThrow(/exports no ModelSpec .*missing id/);
  });

  it('a job on the example module trains with a local Node worker and a browser tab', async () => {
    const port = await freePort();
    const coordinator = startScript('coordinator/main.ts', [
      '--model-module',
      'docs/examples/mlp-gan.ts',
      '--local-workers',
      '1',
      '--worker-backend',
      'wasm',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--set',
      'id=mlp',
      '--set',
      'model.id=mlp-gan',
      '--set',
      'model.config.hidden=32',
      '--set',
      `output.dir=${outputDir}`,
      '--set',
      'output.evalEvery=0',
      '--set',
      'training.batchSize=16',
      // Rounds wait for the tab too: this MLP's rounds alone take ~20 ms, and a tab would rightly watch rather than slow them.
      '--set',
      'training.minWorkers=2',
    ]);
    await coordinator.waitFor(/model mlp-gan loaded: networks, gradients, losses, data parallelism, samples checked/);
    await coordinator.waitFor(/job mlp: mlp-gan on mnist/);
    browser = await launchChromium();
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${port}/join/mlp`);
    const status = () => page.evaluate(() => (globalThis as unknown as { tessera: { status(): TabStatus | undefined } }).tessera.status());
    const tab = (await until(status, (s) => (s?.updatesAccepted ?? 0) >= 2 || s?.state === 'refused', 90_000, 'a tab with 2 accepted updates'))!;
    expect(tab.state, tab.message).toBe('training');
    // The round log is written after the ack the tab counted, and a tab update may be set aside as a verification copy.
    type Row = { applied: boolean; updates: { workerId: string }[]; excluded: { workerId: string }[] };
    const contributors = (rows: Row[]) => new Set(rows.flatMap((row) => [...row.updates, ...row.excluded].map((update) => update.workerId)));
    const rounds = await until(
      () => readRounds<Row>(join(outputDir, 'mlp', 'rounds.jsonl')),
      (rows) => contributors(rows).has(tab.workerId),
      30_000,
      'the tab in the round log',
    );
    expect(rounds.every((row) => row.applied)).toBe(true);
    expect(contributors(rounds).size).toBe(2);
  });
});
