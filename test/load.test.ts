import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startScript, stopAll } from './helpers/processes.ts';
import { formatReport, runFleet } from './load/fleet.ts';
import { formatRouteLoad, loadRoutes } from './load/http-api.ts';

/*
 * 500 simulated WebSocket workers against a real coordinator process on
 * loopback, with a model so small (width 4, latent 8, batch 1: ~5,000
 * parameters, ~20 KB per update) that the coordinator's own work per worker
 * is what gets measured: sockets, sessions, assignments, validation, rounds.
 */

const WORKERS = 500;
const RAMP_MS = 10_000;
const DURATION_MS = 24_000;
/**
 * Peak RSS over the idle coordinator. Per connected worker the coordinator
 * holds a socket (ws and kernel-side buffers), a session record, its open
 * assignment and, until its round closes, one decoded update of ~20 KB: about
 * 0.1 MB, 50 MB for 500, plus garbage-collector slack (seen: +90 MB, +112 MB).
 * Rounds this large are folded in the fold thread, whose own V8 isolate and
 * TypeScript loader take ~40 MB and its heap some more (seen: +171 MB in all).
 * A coordinator that kept what it should let go would blow far past 240 MB: the
 * ~80,000 updates of a run are ~1.6 GB, and even 1 KB kept per update is 80 MB.
 */
const PEAK_GROWTH_CAP_BYTES = 240 * 2 ** 20;
/** Growth while the full fleet trains (after the ramp): the per-update part of the above, ~30 MB seen. */
const STEADY_GROWTH_CAP_BYTES = 100 * 2 ** 20;

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-load-'));

afterAll(async () => {
  await stopAll();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('coordinator under load on loopback', () => {
  it(`serves ${WORKERS} WebSocket workers without refusing, dropping or growing without bound, then the HTTP API`, async () => {
    const coordinator = startScript('coordinator/main.ts', [
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--set',
      `output.dir=${outputDir}`,
      '--set',
      'model.config.width=4',
      '--set',
      'model.config.latentDim=8',
      '--set',
      'training.batchSize=1',
      // The fleet sends random gradients: duplicates of them would disagree and send the coordinator's referee to work.
      '--set',
      'training.verification.duplicateShare=0',
      // No quality scorings: this test measures the door and the round path alone.
      '--set',
      'output.evalEvery=0',
      // The whole fleet comes from 127.0.0.1: the per-address cap on connections waiting to say hello (32, meant for
      // one host) would refuse the ramp's joins whenever a loaded machine is slow to answer their hellos.
      '--door-limits',
      JSON.stringify({ maxPreHelloPerAddress: WORKERS }),
    ]);
    const port = Number((await coordinator.waitFor(/tessera coordinator on http:\/\/127\.0\.0\.1:(\d+)/))[1]);

    const report = await runFleet({ url: `ws://127.0.0.1:${port}/ws`, workers: WORKERS, rampMs: RAMP_MS, durationMs: DURATION_MS, computeMs: 20 });
    console.log(formatReport(report).join('\n'));

    expect(report.joined).toBe(WORKERS);
    expect(report.rejects).toEqual({});
    expect(report.refused).toBe(0);
    expect(report.dropped).toBe(0);
    // Each version goes out before the assignment on it: no worker has to ask.
    expect(report.weightFetches).toBe(0);
    expect(report.weightPushes).toBeGreaterThanOrEqual(WORKERS);
    // Every update is answered, but for those still in flight when their workers left (at most one each).
    expect(report.acks).toBeGreaterThanOrEqual(report.updatesSent - WORKERS);
    expect(report.rounds).toBeGreaterThanOrEqual(20);
    expect(report.updateLatencyMs.p99).toBeLessThan(2_000);

    const [baseline] = report.memory;
    const peak = Math.max(...report.memory.map((sample) => sample.rssBytes));
    expect(peak - baseline.rssBytes).toBeLessThan(PEAK_GROWTH_CAP_BYTES);
    const training = report.memory.filter((sample) => sample.atMs >= RAMP_MS + 1_000 && sample.atMs <= DURATION_MS);
    expect(training.length).toBeGreaterThan(5);
    expect(training.at(-1)!.rssBytes - training[0].rssBytes).toBeLessThan(STEADY_GROWTH_CAP_BYTES);
    expect(coordinator.output()).not.toMatch(/rejected|output failed/);

    // The read routes under 20 concurrent connections, briefly: no errors, no non-2xx.
    const routes = await loadRoutes(`http://127.0.0.1:${port}`, { connections: 20, durationSeconds: 2 });
    console.log(formatRouteLoad(routes).join('\n'));
    for (const route of routes) {
      expect(route.errors + route.non2xx + route.timeouts, `GET ${route.path}`).toBe(0);
      expect(route.requests).toBeGreaterThan(100);
    }
  });
});
