import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './helpers/nats-server.ts';
import { signal, startScript, stopAll, type Started } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';

/**
 * Heterogeneous and elastic fleets, against real processes: a throttled
 * worker, a worker killed mid-round, a coordinator killed and restarted, a
 * worker joining late.
 */

interface RoundLine {
  round: number;
  version: number;
  applied: boolean;
  durationMs: number;
  deadlineMs: number;
  updates: { workerId: string; samples: number; computeMs: number; finishMs: number; shards: number }[];
  failures: { workerId: string; code: string }[];
}

let outputDir = '';
afterEach(async () => {
  await stopAll();
  if (outputDir) rmSync(outputDir, { recursive: true, force: true });
});

function setup(settings: string[]) {
  outputDir = mkdtempSync(join(tmpdir(), 'tessera-elastic-'));
  const log = (): RoundLine[] => readRounds(join(outputDir, 'default', 'rounds.jsonl'));
  const start = (port: number) =>
    startScript('coordinator/main.ts', [
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--set',
      `output.dir=${outputDir}`,
      '--set',
      'model.config.latentDim=16',
      // The G of the recipe trials before depth 4 became the default: these tests time workers, not samples.
      '--set',
      'model.config.generatorDepth=2',
      // These tests count every worker's samples in every round: no verification copies (a copy's samples count once).
      '--set',
      'training.verification.duplicateShare=0',
      // Nor quality scorings: their thread takes CPU from the workers whose speeds these tests compare.
      '--set',
      'output.evalEvery=0',
      ...settings.flatMap((setting) => ['--set', setting]),
    ]);
  return { log, start };
}

// Plain wasm kernels, not the oneDNN addon: these tests compare workers' speeds, and with the addon a width-32 step is so
// short that each round's fixed costs (weights fetch, upload) dominate the finish times the split is learned from; one
// round on a busy machine then read 3x off its speed (a 5x-throttled worker's share 0.31 of its speed ratio).
const worker = (port: number, name: string, extra: string[] = []) =>
  startScript('worker/main.ts', ['--url', `ws://127.0.0.1:${port}/ws`, '--backend', 'wasm', '--name', name, ...extra], {
    TESSERA_NATIVE_KERNELS: '0',
  });

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const idOf = async (coordinator: Started, name: string) => (await coordinator.waitFor(new RegExp(`worker (\\S+) joined \\(node, wasm, ${name}\\)`)))[1];

describe('elastic training', () => {
  it('gives a worker slowed 5x proportionally smaller batches, so rounds track the fast worker', async () => {
    const { log, start } = setup(['model.config.width=32', 'training.batchSize=48', 'training.minWorkers=2', 'training.rounds=14']);
    const port = await freePort();
    const coordinator = start(port);
    await coordinator.waitFor(/tessera coordinator on/);
    worker(port, 'fast');
    worker(port, 'slow', ['--throttle', '5']);
    const [fast, slow] = [await idOf(coordinator, 'fast'), await idOf(coordinator, 'slow')];
    await coordinator.waitFor(/finished after 14 rounds/, 180_000);
    const rounds = log();
    // The first round splits equally (no speeds measured yet); within a few rounds the split follows speed.
    expect(rounds[0].updates.find((entry) => entry.workerId === slow)!.samples).toBe(48);
    const update = (line: RoundLine, id: string) => line.updates.find((entry) => entry.workerId === id)!;
    const settled = rounds.slice(-5);
    const fits: number[] = [];
    for (const line of settled) {
      expect(line.updates).toHaveLength(2);
      const [slowUpdate, fastUpdate] = [update(line, slow), update(line, fast)];
      // Much smaller than the fast worker's, in proportion to the speeds the coordinator measures (samples per second from
      // assignment to update: the workers' own compute times are claims, and leave out each round's fixed costs).
      expect(slowUpdate.samples * 3).toBeLessThan(fastUpdate.samples);
      const shareRatio = slowUpdate.samples / fastUpdate.samples;
      const speedRatio = slowUpdate.samples / slowUpdate.finishMs / (fastUpdate.samples / fastUpdate.finishMs);
      fits.push(shareRatio / speedRatio);
    }
    // A round's split follows the speeds smoothed over the rounds before it, net of reported transfer time, so one round on
    // a busy machine can be off by 2x (CI read 2.15 once; runs here read 0.66-1.79): the median round must be within 2x,
    // and none off by 3x (equal batches would be off by 5x).
    fits.sort((a, b) => a - b);
    expect(fits[2]).toBeGreaterThan(0.5);
    expect(fits[2]).toBeLessThan(2);
    expect(fits[0]).toBeGreaterThan(1 / 3);
    expect(fits[4]).toBeLessThan(3);
    // Both finish at about the same time: the round is not held up by the slow one as it would be with equal batches.
    const mean = (values: number[]) => values.reduce((a, b) => a + b) / values.length;
    const slowFinish = mean(settled.map((line) => update(line, slow).finishMs));
    const fastFinish = mean(settled.map((line) => update(line, fast).finishMs));
    expect(slowFinish).toBeLessThan(fastFinish * 2);
    const slowMsPerSample = mean(settled.map((line) => update(line, slow).computeMs / update(line, slow).samples));
    expect(mean(settled.map((line) => line.durationMs))).toBeLessThan((slowMsPerSample * 48) / 2);
  });

  it('kill -9 of a worker mid-round: that round still closes, the next go on without it, and the survivor takes over its shards', async () => {
    const { log, start } = setup(['model.config.width=8', 'training.batchSize=8', 'training.roundDeadlineMs=60000', 'training.deadlineFloorMs=1000']);
    const port = await freePort();
    const coordinator = start(port);
    await coordinator.waitFor(/tessera coordinator on/);
    const survivor = worker(port, 'survivor');
    const victim = worker(port, 'victim');
    void survivor;
    const victimId = await idOf(coordinator, 'victim');
    await until(() => log().filter((line) => line.updates.length === 2).length >= 5, 90_000, 'five rounds with both workers');
    const before = log().length;
    signal(victim, 'SIGKILL');
    await until(() => log().length >= before + 4, 60_000, 'four rounds after the kill');
    const after = log().slice(before);
    // The round open at the kill closed well inside its deadline, without the victim's update.
    expect(after[0].durationMs).toBeLessThanOrEqual(after[0].deadlineMs + 500);
    expect(after.slice(1).every((line) => line.applied && line.updates.length === 1 && line.updates[0].workerId !== victimId)).toBe(true);
    // Its shards are dealt to the survivor: all 16.
    expect(after.at(-1)!.updates[0].shards).toBe(16);
    expect(
      log()
        .slice(0, before)
        .at(-1)!
        .updates.every((update) => update.shards === 8),
    ).toBe(true);
  });

  it('kill -9 of the coordinator, then a restart: the job resumes from its checkpoint and the workers rejoin by themselves', async () => {
    const { log, start } = setup(['model.config.width=8', 'training.batchSize=8', 'training.minWorkers=2', 'output.checkpointEvery=5']);
    const port = await freePort();
    const first = start(port);
    await first.waitFor(/tessera coordinator on/);
    const workers = [worker(port, 'one'), worker(port, 'two')];
    await until(() => log().length >= 12, 90_000, 'twelve rounds');
    signal(first, 'SIGKILL');
    await first.exited;
    const loggedBeforeCrash = log().length;
    const restarted = start(port);
    const resumedAt = Number((await restarted.waitFor(/resumed at round (\d+)/))[1]);
    expect(resumedAt % 5).toBe(0);
    expect(resumedAt).toBeLessThanOrEqual(loggedBeforeCrash);
    // The same worker processes come back (no restart), and training goes on past the crash.
    await until(() => log().length >= loggedBeforeCrash + 5 && (log().at(-1)?.updates.length ?? 0) === 2, 90_000, 'rounds after the restart');
    for (const process of workers) expect(process.child.exitCode).toBeNull();
    const rounds = log();
    // Rounds after the checkpoint were redone: each round number and version once, in order.
    expect(rounds.map((line) => line.round)).toEqual(rounds.map((_, index) => index));
    expect(rounds.map((line) => line.version)).toEqual(rounds.map((_, index) => index));
  });

  it('a worker joining at round 10 trains from the current version', async () => {
    const { log, start } = setup(['model.config.width=8', 'training.batchSize=8']);
    const port = await freePort();
    const coordinator = start(port);
    await coordinator.waitFor(/tessera coordinator on/);
    worker(port, 'early');
    await until(() => log().length >= 10, 90_000, 'ten rounds');
    worker(port, 'late');
    const lateId = await idOf(coordinator, 'late');
    await until(() => log().some((line) => line.updates.some((update) => update.workerId === lateId)), 60_000, 'the late worker contributing');
    const first = log().find((line) => line.updates.some((update) => update.workerId === lateId))!;
    expect(first.round).toBeGreaterThanOrEqual(10);
    expect(first.version).toBeGreaterThanOrEqual(10);
    expect(first.failures.filter((failure) => failure.workerId === lateId)).toEqual([]);
    expect(coordinator.output()).not.toMatch(new RegExp(`update from ${lateId} rejected`));
  });

  it('a much slower newcomer, cut off by the learned deadline at first, is resized and then contributes', async () => {
    const { log, start } = setup(['model.config.width=32', 'training.batchSize=48', 'training.deadlineFloorMs=1500']);
    const port = await freePort();
    const coordinator = start(port);
    await coordinator.waitFor(/tessera coordinator on/);
    worker(port, 'fast');
    await until(() => log().length >= 6, 90_000, 'six rounds to learn a deadline');
    // 20x: its first, equal batch (48 samples, ~120-160 ms on the fast worker) takes seconds, well past the 1.5 s floor
    // whatever the machine's load (at 12x a quiet machine fitted it inside the floor, so nothing was cut off).
    worker(port, 'crawler', ['--throttle', '20']);
    const crawler = await idOf(coordinator, 'crawler');
    await until(() => log().some((line) => line.updates.some((update) => update.workerId === crawler)), 90_000, 'the slow newcomer contributing');
    const first = log().find((line) => line.updates.some((update) => update.workerId === crawler))!;
    const own = first.updates.find((update) => update.workerId === crawler)!;
    const other = first.updates.find((update) => update.workerId !== crawler)!;
    expect(own.samples).toBeLessThan(other.samples);
  });
});
