import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { NamedArrays } from '../shared/codec/types.ts';
import { freePort, NatsServer } from './helpers/nats-server.ts';
import { startScript, stop, stopAll, until, type Started } from './helpers/processes.ts';
import { readRounds } from './helpers/round-log.ts';
import { fleetGradient, runNatsFleet, type NatsFleetReport } from './load/nats-fleet.ts';

/*
 * Aggregators (docs/aggregators.md): a real nats-server whose
 * max_payload (32 KiB) makes every update a chunked message, the real
 * coordinator, real aggregator processes and 256 simulated NATS workers
 * (test/load/nats-fleet.ts) sending seeded gradients. The job runs in local
 * mode with an outer SGD of learning rate 1 and no momentum, so each version's
 * weights minus the next are exactly the round's aggregate, which the test
 * recomputes from the seeds: the plain sample-weighted mean of the updates
 * the round log counts (a clip radius far above any norm, no share cap).
 */

const WORKERS = 256;
const ROUNDS = 3;
const SEED = 7;
const outputDir = mkdtempSync(join(tmpdir(), 'tessera-aggregators-'));
let nats: NatsServer | undefined;

afterEach(async () => {
  await stopAll();
  await nats?.stop();
});
afterAll(() => rmSync(outputDir, { recursive: true, force: true }));

async function startNats(): Promise<{ monitor: number }> {
  const monitor = await freePort();
  const conf = join(outputDir, `nats-${monitor}.conf`);
  writeFileSync(conf, 'max_payload: 32768\n');
  nats = new NatsServer(await freePort(), ['-c', conf, '-m', String(monitor)]);
  await nats.start();
  return { monitor };
}

function startCoordinator(jobId: string, port: number): Started {
  const settings = [
    `id=${jobId}`,
    `output.dir=${outputDir}`,
    'training.batchSize=4',
    'model.config.width=8',
    'model.config.latentDim=16',
    `training.minWorkers=${WORKERS}`,
    'training.verification.duplicateShare=0',
    'training.mode=local',
    'training.localSteps=1',
    'training.outerLearningRate=1',
    'training.outerMomentum=0',
    'training.maxGradNorm=0',
    'training.aggregation.clipNorm=1000000',
    'training.aggregation.maxShare=1',
    'training.roundDeadlineMs=60000',
    'output.evalEvery=0',
  ];
  return startScript('coordinator/main.ts', [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--nats',
    nats!.url,
    ...settings.flatMap((setting) => ['--set', setting]),
  ]);
}

/** Bytes the nats-server sent the coordinator's connection so far (its out_bytes: into the coordinator). */
async function coordinatorInBytes(monitor: number): Promise<number> {
  const connz = (await (await fetch(`http://127.0.0.1:${monitor}/connz?limit=4096`)).json()) as { connections: { name?: string; out_bytes: number }[] };
  return connz.connections.filter((connection) => connection.name === 'tessera-coordinator').reduce((sum, connection) => sum + connection.out_bytes, 0);
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

interface RoundLine {
  round: number;
  version: number;
  updates: { workerId: string; samples: number }[];
  failures: unknown[];
}

/** ||measured - expected|| / ||expected|| over every tensor, with measured = weights before - weights after the round. */
function relativeError(before: NamedArrays, after: NamedArrays, expected: NamedArrays): number {
  let error = 0;
  let norm = 0;
  for (const name of Object.keys(expected)) {
    for (let i = 0; i < expected[name].length; i++) {
      const delta = before[name][i] - after[name][i];
      error += (delta - expected[name][i]) ** 2;
      norm += expected[name][i] ** 2;
    }
  }
  return Math.sqrt(error / norm);
}

/** The plain weighted mean of the round's counted updates, recomputed from the fleet's seeds (float64). */
function expectedMean(report: NatsFleetReport, line: RoundLine, shapes: Record<string, number[]>): NamedArrays {
  const sums: Record<string, Float64Array> = {};
  let total = 0;
  for (const { workerId, samples } of line.updates) {
    const grads = fleetGradient(SEED, report.indexOf.get(workerId)!, line.round, shapes);
    for (const [name, values] of Object.entries(grads)) {
      const sum = (sums[name] ??= new Float64Array(values.length));
      for (let i = 0; i < values.length; i++) sum[i] += samples * values[i];
    }
    total += samples;
  }
  return Object.fromEntries(Object.entries(sums).map(([name, sum]) => [name, Float64Array.from(sum, (value) => value / total) as unknown as Float32Array]));
}

async function run(jobId: string, aggregatorCount: number) {
  const { monitor } = await startNats();
  const port = await freePort();
  const coordinator = startCoordinator(jobId, port);
  await coordinator.waitFor(/tessera coordinator on/, 60_000);
  const aggregators = Array.from({ length: aggregatorCount }, (_, k) =>
    startScript('aggregator/main.ts', ['--nats', nats!.url, '--job', jobId, '--id', `agg${k}`]),
  );
  for (const aggregator of aggregators) await aggregator.waitFor(/aggregator agg\d+ for job/, 60_000);
  if (aggregatorCount > 0) await coordinator.waitFor(new RegExp(`aggregator agg\\d+ joined job ${jobId} \\(${aggregatorCount} running\\)`), 10_000);
  const bytesBefore = await coordinatorInBytes(monitor);
  const startedAt = Date.now();
  const report = await runNatsFleet({
    servers: nats!.url,
    jobId,
    workers: WORKERS,
    seed: SEED,
    computeMs: 200,
    losses: { d: 1.386, g: 0.693 },
    stopAfterRounds: ROUNDS,
    durationMs: 60_000,
  });
  const elapsedMs = Date.now() - startedAt;
  const bytesIn = (await coordinatorInBytes(monitor)) - bytesBefore;
  const lines = await until(
    () => readRounds<RoundLine>(join(outputDir, jobId, 'rounds.jsonl')),
    (rows) => rows.length >= ROUNDS,
    20_000,
    `${ROUNDS} rounds in the round log`,
  );
  const partials = await metric(port, 'tessera_aggregator_partials_total');
  const folded = await metric(port, 'tessera_aggregator_updates_total');
  await stop(coordinator);
  await Promise.all(aggregators.map((aggregator) => stop(aggregator)));
  return { report, lines: lines.slice(0, ROUNDS), partials, folded, bytesIn, elapsedMs, aggregators };
}

function checkSteps(report: NatsFleetReport, lines: RoundLine[]): number[] {
  const shapes = Object.fromEntries(Object.entries(report.weights.get(0)!).map(([name, values]) => [name, [values.length]]));
  return lines.map((line) => {
    expect(line.updates).toHaveLength(WORKERS);
    const before = report.weights.get(line.version)!;
    const after = report.weights.get(line.version + 1)!;
    expect(after, `weights after version ${line.version}`).toBeDefined();
    return relativeError(before, after, expectedMean(report, line, shapes));
  });
}

describe('aggregators', () => {
  it('3 aggregators and 256 NATS workers: the coordinator gets 3 partials a round, and steps by the weighted mean of the 256 updates', async () => {
    const { report, lines, partials, folded, bytesIn, elapsedMs, aggregators } = await run('agg3', 3);
    expect(report.updateBytes).toBeGreaterThan(32_768);
    expect(report.rejects).toEqual({});
    expect(partials).toBe(3 * ROUNDS);
    expect(folded).toBe(WORKERS * ROUNDS);
    const errors = checkSteps(report, lines);
    for (const error of errors) expect(error).toBeLessThan(1e-5);
    const perRound = bytesIn / ROUNDS;
    console.log(
      `3 aggregators: ${ROUNDS} rounds in ${(elapsedMs / 1000).toFixed(1)} s; coordinator inbound ${(perRound / 2 ** 20).toFixed(2)} MiB/round ` +
        `(updates of ${report.updateBytes} B); step relative errors ${errors.map((error) => error.toExponential(2)).join(', ')}; ` +
        aggregators.map((aggregator) => aggregator.output().trim().split('\n').at(-1)).join(' | '),
    );
  });

  it('the same run with no aggregator: 256 updates a round reach the coordinator directly, same step', async () => {
    const { report, lines, partials, bytesIn, elapsedMs } = await run('agg0', 0);
    expect(report.rejects).toEqual({});
    expect(partials).toBe(0);
    const errors = checkSteps(report, lines);
    for (const error of errors) expect(error).toBeLessThan(1e-5);
    console.log(
      `no aggregator: ${ROUNDS} rounds in ${(elapsedMs / 1000).toFixed(1)} s; coordinator inbound ${(bytesIn / ROUNDS / 2 ** 20).toFixed(2)} MiB/round; ` +
        `step relative errors ${errors.map((error) => error.toExponential(2)).join(', ')}`,
    );
  });
});
