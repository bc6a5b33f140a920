import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './helpers/nats-server.ts';
import { startScript, stopAll, until } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

/**
 * Claims measured, not believed: three honest workers and a liar that really
 * computes as fast as they do but says hello with samplesPerSecond 1e300 and
 * reports every update as computed in 0 ms. Its share of each round is what
 * the coordinator measured, never more than the cap.
 */

interface RoundLine {
  round: number;
  samples: number;
  updates: { workerId: string; samples: number; computeMs: number; finishMs: number }[];
}

const ROUNDS = 16;
/** Rounds the schedule may take to settle: the first is equal, then each batch grows at most x1.5 per round. */
const WARMUP = 5;

let outputDir = '';
afterEach(async () => {
  await stopAll();
  if (outputDir) rmSync(outputDir, { recursive: true, force: true });
});

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe('speed claims', () => {
  it('a worker claiming 1e300 samples/s and 0 ms compute gets its measured share, never above the cap', async () => {
    outputDir = mkdtempSync(join(tmpdir(), 'tessera-claims-'));
    const port = await freePort();
    const coordinator = startScript('coordinator/main.ts', [
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--set',
      `output.dir=${outputDir}`,
      '--set',
      'model.config.width=8',
      '--set',
      'model.config.latentDim=16',
      '--set',
      'training.batchSize=16',
      '--set',
      'training.minWorkers=4',
      '--set',
      `training.rounds=${ROUNDS}`,
    ]);
    await coordinator.waitFor(/tessera coordinator on/);
    const url = `ws://127.0.0.1:${port}/ws`;
    for (const name of ['honest-1', 'honest-2', 'honest-3']) startScript('worker/main.ts', ['--url', url, '--backend', 'wasm', '--name', name]);
    const liar = startScript('test/helpers/liar-worker.ts', ['--url', url]);
    const liarId = (await liar.waitFor(/\[liar\] joined job default as (\S+)/))[1];
    await coordinator.waitFor(new RegExp(`finished after ${ROUNDS} rounds`), 60_000);

    const path = join(outputDir, 'default', 'rounds.jsonl');
    const rounds = await until(
      () => readRounds<RoundLine>(path),
      (lines) => lines.length >= ROUNDS,
      10_000,
      'the round log',
    );
    // Rounds all four workers made (on a loaded machine one may miss a deadline now and then: 10 of 16 once, 2026-12-04),
    // enough that the rounds after the warm-up still average the share over several.
    const full = rounds.filter((line) => line.updates.length === 4);
    expect(full.length).toBeGreaterThanOrEqual(ROUNDS - 6);
    // The lie reached the coordinator: every update of the liar says 0 ms.
    const liarUpdates = full.map((line) => line.updates.find((update) => update.workerId === liarId)!);
    expect(liarUpdates.every((update) => update.computeMs === 0)).toBe(true);

    // Its true compute times, which it printed and did not report.
    const trueComputeMs = new Map(
      [...liar.output().matchAll(/\[liar\] round (\d+): (\d+) samples in ([\d.]+) ms/g)].map((match) => [Number(match[1]), Number(match[3])]),
    );
    const shares = full.map((line) => liarUpdates[full.indexOf(line)].samples / line.samples);
    const proportional = full.map((line) => {
      // Each worker's real speed: honest ones as they reported, the liar as it really was.
      const speed = (update: RoundLine['updates'][number]) => update.samples / (update.workerId === liarId ? trueComputeMs.get(line.round)! : update.computeMs);
      return speed(line.updates.find((update) => update.workerId === liarId)!) / line.updates.reduce((sum, update) => sum + speed(update), 0);
    });
    // After a few rounds, its share is near what its real speed earns (noisy: 5 processes share the cores).
    const settledShare = mean(shares.slice(WARMUP));
    const settledProportional = mean(proportional.slice(WARMUP));
    console.log(
      `liar's share of samples: ${(100 * mean(shares)).toFixed(1)}% over ${full.length} rounds, ${(100 * settledShare).toFixed(1)}% after round ${WARMUP}; ` +
        `its real proportional share ${(100 * settledProportional).toFixed(1)}%; per round (round:share%): ${full.map((line, i) => `${line.round}:${(100 * shares[i]).toFixed(0)}`).join(' ')}`,
    );
    // The cap (half of a round with 4 workers) holds in every round, the first included.
    for (const [i, line] of full.entries()) expect(liarUpdates[i].samples, `round ${line.round}`).toBeLessThanOrEqual(Math.ceil(line.samples / 2));
    expect(settledShare).toBeLessThan(settledProportional * 1.6);
    expect(settledShare).toBeGreaterThan(settledProportional * 0.4);
  }, 90_000);
});
