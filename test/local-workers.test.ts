import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startScript, stop, stopAll } from './helpers/processes.ts';

/*
 * What `npm start` prints, with its own local workers (their output goes to
 * the coordinator's terminal): the first round waits for all of them, and
 * each rejected update is logged once, by the coordinator.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-local-workers-'));

/** The coordinator as `npm start` runs it (two local workers), on a tiny model. */
function startWithLocalWorkers(id: string, extra: string[] = []) {
  return startScript('coordinator/main.ts', [
    '--local-workers',
    '2',
    '--worker-backend',
    'wasm',
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--set',
    `id=${id}`,
    '--set',
    `output.dir=${outputDir}`,
    '--set',
    'training.batchSize=4',
    '--set',
    'model.config.width=4',
    '--set',
    'model.config.latentDim=8',
    ...extra,
  ]);
}

afterAll(async () => {
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('npm start with local workers', () => {
  it('waits for both local workers before the first round, and numbers rounds from 0', async () => {
    // No verification copies: a duplicated assignment counts once, and the first line would show 1 update (a 5% chance a round).
    const coordinator = startWithLocalWorkers('both', ['--rounds', '2', '--set', 'training.verification.duplicateShare=0']);
    await coordinator.waitFor(/finished after 2 rounds/, 120_000);
    expect(await coordinator.exited).toBe(0);
    const output = coordinator.output();
    const first = output.split('\n').find((line) => /\bround \d+/.test(line) && /updates/.test(line));
    expect(first).toMatch(/round 0, step 1 of 2 \|.*\| 2 updates,/);
    expect(output).toMatch(/waiting for workers: [01] connected, the job needs 2/);
  });

  it('logs each rejected update once: the coordinator does, its local workers do not again', async () => {
    // A gradient-norm limit no update meets: every update is rejected (NORM_TOO_LARGE), deterministically.
    const coordinator = startWithLocalWorkers('rejecting', ['--set', 'training.maxGradNorm=1e-12']);
    await coordinator.waitFor(/(update from local-\d \(\S+\) rejected: NORM_TOO_LARGE[^\n]*\n[^]*){4}/, 120_000);
    await stop(coordinator);
    const output = coordinator.output();
    expect(output.match(/update from local-\d \(\S+\) rejected: NORM_TOO_LARGE/g)!.length).toBeGreaterThanOrEqual(4);
    expect(output).not.toMatch(/\[worker local-\d\] rejected/);
  });
});
