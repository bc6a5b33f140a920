import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, signal, startScript, stopAll, type Started } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

/*
 * What Kubernetes does to a worker pod on a scale-down, a drain or a rollout:
 * SIGTERM, then SIGKILL after terminationGracePeriodSeconds. The worker must
 * finish the update it is computing, send it, say leave and exit 0 well within
 * the grace period, and the job must go on without waiting out a round
 * deadline for it.
 */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-sigterm-'));
/** Far above any round here: a round that waited for the leaving worker would show it. */
const ROUND_DEADLINE_MS = 60_000;
/** The worker must be gone well within the pods' 90 s grace period; 10 s is plenty for a tiny model. */
const EXIT_WITHIN_MS = 10_000;

interface RoundLine {
  round: number;
  durationMs: number;
  updates: { workerId: string }[];
  failures: { workerId: string; code: string }[];
}

function roundLog(): RoundLine[] {
  return readRounds(join(outputDir, 'default', 'rounds.jsonl'));
}

function startWorker(port: number, name: string, extra: string[] = []): Started {
  return startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', name, ...extra]);
}

/** Polls until `condition` holds; fails naming what it waited for. */
async function waitUntil(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Rounds the worker reported sending, in its output (0-based, as in rounds.jsonl). */
const roundsSent = (worker: Started) => [...worker.output().matchAll(/\] round (\d+):/g)].map((match) => Number(match[1]));

afterAll(async () => {
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('a worker stopped with SIGTERM', () => {
  it('finishes its update, leaves, exits 0, and the job goes on without it', async () => {
    const coordinator = startScript('coordinator/main.ts', [
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--set',
      `output.dir=${outputDir}`,
      '--set',
      'training.batchSize=4',
      // A fixed deadline, not the adaptive one: waiting for the leaver would take the full minute.
      '--set',
      'training.deadline=fixed',
      '--set',
      `training.roundDeadlineMs=${ROUND_DEADLINE_MS}`,
      '--set',
      'model.config.width=8',
      '--set',
      'model.config.latentDim=16',
      // The test looks for rounds holding both workers' updates: no verification copies (a copy's samples count once).
      '--set',
      'training.verification.duplicateShare=0',
    ]);
    const port = Number((await coordinator.waitFor(/tessera coordinator on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const staying = startWorker(port, 'staying');
    // Throttled so that each of its steps lasts a while: the SIGTERM lands mid-computation.
    const leaving = startWorker(port, 'leaving', ['--throttle', '20']);
    const leavingId = (await leaving.waitFor(/joined job default as (\S+)/))[1];
    const stayingId = (await staying.waitFor(/joined job default as (\S+)/))[1];

    // Both train together first.
    await waitUntil('3 rounds with both workers', () => roundLog().filter((line) => line.updates.length === 2).length >= 3, 60_000);

    // The worker health check of the images passes while they are connected, and fails for a port nobody uses.
    const healthy = spawnSync(process.execPath, ['deploy/worker-health.mjs', String(port)], { cwd: ROOT, encoding: 'utf8' });
    expect(healthy.status, healthy.stdout).toBe(0);
    expect(spawnSync(process.execPath, ['deploy/worker-health.mjs', '1'], { cwd: ROOT }).status).toBe(1);

    // Right after it sends an update the next assignment arrives (the other worker is long done): 150 ms later it is computing that one.
    const sentBefore = roundsSent(leaving).length;
    await waitUntil('one more update from the throttled worker', () => roundsSent(leaving).length > sentBefore, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const signalledAt = Date.now();
    signal(leaving, 'SIGTERM');

    const code = await Promise.race([leaving.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), EXIT_WITHIN_MS))]);
    const exitMs = Date.now() - signalledAt;
    expect(code, leaving.output().slice(-2000)).toBe(0);
    const notice = 'SIGTERM: finishing the current update, then leaving';
    expect(leaving.output()).toContain(notice);
    const afterSignal = leaving.output().slice(leaving.output().indexOf(notice));
    expect(afterSignal).toMatch(/stopped: SIGTERM/);
    // It was computing when the signal came, and that update went out before it left.
    const finalRound = Number(afterSignal.match(/\] round (\d+):/)?.[1]);
    expect(Number.isInteger(finalRound), `a round finished after SIGTERM:\n${afterSignal}`).toBe(true);
    await coordinator.waitFor(new RegExp(`worker ${leavingId} left: left: SIGTERM`), 10_000);

    // The job goes on with the other worker.
    await waitUntil('3 rounds after the leave', () => roundLog().filter((line) => line.round > finalRound).length >= 3, 60_000);
    // Before the shutdown, whose last round is cut short by it.
    const after = roundLog().filter((line) => line.round > finalRound);
    await stopAll();

    const log = roundLog();
    const byRound = new Map(log.map((line) => [line.round, line]));
    // The update it finished after SIGTERM counted.
    expect(byRound.get(finalRound)!.updates.map((update) => update.workerId)).toContain(leavingId);
    // No round waited for it: none hit the deadline, and none took more than a few seconds.
    expect(log.flatMap((line) => line.failures).filter((failure) => failure.code === 'DEADLINE')).toEqual([]);
    // The rounds from the one it finished to the first without it closed as soon as their updates were in (the throttled worker's
    // first steps, while tfjs warms up, may take seconds: not counted).
    const aroundLeave = log.filter((line) => line.round >= finalRound);
    const slowest = Math.max(...aroundLeave.map((line) => line.durationMs));
    expect(slowest).toBeLessThan(ROUND_DEADLINE_MS / 6);
    // Afterwards the staying worker carries the job alone.
    expect(after.length).toBeGreaterThanOrEqual(3);
    for (const line of after) expect(line.updates.map((update) => update.workerId)).toEqual([stayingId]);
    console.log(
      `SIGTERM mid-round ${finalRound}: exit 0 after ${exitMs} ms; ${after.length} rounds after it with the other worker; slowest round from then on: ${slowest} ms (deadline ${ROUND_DEADLINE_MS} ms)`,
    );
  });
});
