import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pack } from '../shared/codec/packr.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.ts';
import { parseJobConfig } from './config.ts';
import { Hub } from './hub.ts';
import { Job } from './job/job.ts';
import { ContributionRates, createMetrics, type Metrics } from './metrics.ts';
import { JobRunner } from './job/runner.ts';
import { FakeChannel, fakeTrainer, shapes, updateFor } from './test-fixtures.ts';

const BATCH = 4;

/** Every series of the registry as `name{label="value",...}` → value (histograms as their _bucket, _sum and _count series). */
async function snapshot(metrics: Metrics): Promise<Map<string, number>> {
  const series = new Map<string, number>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    for (const value of metric.values) {
      const labels = Object.entries(value.labels)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, label]) => `${name}="${label}"`)
        .join(',');
      series.set(`${(value as { metricName?: string }).metricName ?? metric.name}{${labels}}`, value.value);
    }
  }
  return series;
}

/** Sum of every series of `name` whose labels include `match`. */
function total(series: Map<string, number>, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of series) {
    if (!key.startsWith(`${name}{`)) continue;
    if (Object.entries(match).every(([label, wanted]) => key.includes(`${label}="${wanted}"`))) sum += value;
  }
  return sum;
}

/** Counter-like series (counters, histogram buckets, sums and counts) never go down. */
function expectMonotonic(before: Map<string, number>, after: Map<string, number>): void {
  for (const [key, value] of before) {
    if (!/^[a-z_]+(_total|_bucket|_count|_sum)\{/.test(key) || key.startsWith('process_') || key.startsWith('nodejs_')) continue;
    expect(after.get(key), key).toBeGreaterThanOrEqual(value);
  }
}

describe('ContributionRates', () => {
  it('matches a steady rate and splits it between workers, the parts adding up to the whole', () => {
    const rates = new ContributionRates(30);
    for (let round = 0; round < 200; round += 1)
      rates.addRound(0.5, [
        ['a', 8],
        ['b', 4],
      ]);
    expect(rates.rate('a')).toBeCloseTo(16, 6);
    expect(rates.rate('b')).toBeCloseTo(8, 6);
  });

  it('counts the first round at full weight and decays older rounds with age', () => {
    const rates = new ContributionRates(10);
    rates.addRound(2, [['a', 10]]);
    expect(rates.rate('a')).toBeCloseTo(5);
    // 100 s later a is idle: its old samples weigh e^-10 of what they did.
    rates.addRound(100, [
      ['a', 0],
      ['b', 100],
    ]);
    expect(rates.rate('a')).toBeLessThan(0.01);
    expect(rates.rate('a') + rates.rate('b')).toBeCloseTo((10 * Math.exp(-10) + 100) / (2 * Math.exp(-10) + 100), 9);
    rates.restart();
    expect(rates.workers()).toEqual(['a', 'b']);
    expect(rates.rate('b')).toBe(0);
    rates.remove('a');
    expect(rates.workers()).toEqual(['b']);
  });
});

describe('createMetrics', () => {
  let dir: string;
  let hub: Hub;
  let runner: JobRunner;
  let metrics: Metrics;
  /** One clock for the runner and the metrics, moved by hand. */
  let clock: number;

  function makeRunner(id: string, overrides: { minWorkers?: number; checkpointEvery?: number } = {}): JobRunner {
    const config = parseJobConfig({
      id,
      // No verification copies: these tests count every worker's samples in every round.
      training: { batchSize: BATCH, minWorkers: overrides.minWorkers ?? 2, verification: { duplicateShare: 0 } },
      dataset: { shards: 4 },
      output: { dir, checkpointEvery: overrides.checkpointEvery ?? 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000 },
    });
    const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([-1, -2, -3, -4]) };
    const job = new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
    return new JobRunner(job, fakeTrainer(), () => clock);
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-metrics-'));
    clock = 1_000_000;
    hub = new Hub({ defaultJobId: 'unit', heartbeatMs: 5000 });
    // The runner is there before the metrics: they must pick it up from hub.runners.
    runner = makeRunner('unit');
    hub.addRunner(runner);
    metrics = createMetrics(hub, { now: () => clock });
  });

  afterEach(async () => {
    for (const each of hub.runners.values()) await each.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const send = (channel: FakeChannel, message: unknown) => hub.onMessage(channel, pack(message).slice());
  const hello = (extra: Record<string, unknown> = {}) => ({
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    kind: 'node',
    backend: 'wasm',
    device: 'test',
    ...extra,
  });

  /** Two workers (a node and a browser) joined, with round 0 assigned to both. */
  async function joinTwo(): Promise<[FakeChannel, FakeChannel]> {
    const node = new FakeChannel();
    const browser = new FakeChannel();
    send(node, hello());
    send(browser, hello({ kind: 'browser', backend: 'webgl' }));
    await vi.waitFor(() => expect(browser.assigns()).toHaveLength(1));
    return [node, browser];
  }

  /** Both workers answer their latest assignment after `seconds`; waits for the next round's assignments. */
  async function playRound(channels: FakeChannel[], seconds: number): Promise<void> {
    const before = channels.map((channel) => channel.assigns().length);
    clock += seconds * 1000;
    for (const channel of channels) send(channel, updateFor(channel.assigns().at(-1)!));
    await vi.waitFor(() => channels.forEach((channel, i) => expect(channel.assigns().length).toBeGreaterThan(before[i])));
  }

  it('counts samples, updates, rounds and bytes from round summaries, by worker kind and backend', async () => {
    const start = await snapshot(metrics);
    expect(start.get('tessera_active_workers{job_id="unit",worker_kind="node"}')).toBe(0);
    const channels = await joinTwo();
    await playRound(channels, 2);
    const after = await snapshot(metrics);
    expectMonotonic(start, after);
    expect(after.get('tessera_samples_processed_total{backend="wasm",job_id="unit",worker_kind="node"}')).toBe(BATCH);
    expect(after.get('tessera_samples_processed_total{backend="webgl",job_id="unit",worker_kind="browser"}')).toBe(BATCH);
    expect(total(after, 'tessera_samples_processed_total')).toBe(runner.job.state.samplesSeen);
    expect(after.get('tessera_updates_total{job_id="unit",outcome="accepted",worker_kind="node"}')).toBe(1);
    expect(after.get('tessera_rounds_total{applied="true",job_id="unit"}')).toBe(1);
    expect(after.get('tessera_round_participants{job_id="unit"}')).toBe(2);
    expect(after.get('tessera_round_duration_seconds_sum{job_id="unit"}')).toBeCloseTo(2);
    expect(after.get('tessera_round_duration_seconds_bucket{job_id="unit",le="2.5"}')).toBe(1);
    expect(after.get('tessera_round_duration_seconds_bucket{job_id="unit",le="1"}')).toBe(0);
    expect(after.get('tessera_loss{job_id="unit",name="d"}')).toBe(1);
    expect(after.get('tessera_loss{job_id="unit",name="g"}')).toBe(2);
    const updateBytes = updateFor(channels[0].assigns()[0]).tensors.byteLength;
    expect(after.get('tessera_update_bytes_total{direction="in",job_id="unit",kind="update"}')).toBe(2 * updateBytes);
    expect(after.get('tessera_job_version{job_id="unit"}')).toBe(1);
    expect(after.get('tessera_job_status{job_id="unit",status="running"}')).toBe(1);
    expect(after.get('tessera_job_status{job_id="unit",status="waiting"}')).toBe(0);
    expect(after.get('tessera_active_workers{job_id="unit",worker_kind="node"}')).toBe(1);
    expect(after.get('tessera_active_workers{job_id="unit",worker_kind="browser"}')).toBe(1);

    await playRound(channels, 1);
    const later = await snapshot(metrics);
    expectMonotonic(after, later);
    expect(total(later, 'tessera_samples_processed_total')).toBe(4 * BATCH);
    expect(total(later, 'tessera_update_bytes_total', { direction: 'in' })).toBe(2 * total(after, 'tessera_update_bytes_total', { direction: 'in' }));
    expect(later.get('tessera_round_duration_seconds_count{job_id="unit"}')).toBe(2);
  });

  it("gives each worker its share of wall-clock throughput, summing to the samples counter's rate, and drops a worker that leaves", async () => {
    const channels = await joinTwo();
    const [node, browser] = channels;
    // 10 rounds of 0.5 s: 8 samples per round, 16 samples/s in all.
    for (let round = 0; round < 10; round += 1) await playRound(channels, 0.5);
    const series = await snapshot(metrics);
    const nodeSeries = `tessera_worker_throughput_samples_per_second{job_id="unit",worker="${node.workerId()}",worker_kind="node"}`;
    const browserSeries = `tessera_worker_throughput_samples_per_second{job_id="unit",worker="${browser.workerId()}",worker_kind="browser"}`;
    expect(series.get(nodeSeries)).toBeCloseTo(8, 6);
    expect(series.get(browserSeries)).toBeCloseTo(8, 6);
    expect(total(series, 'tessera_samples_processed_total') / 5).toBeCloseTo(total(series, 'tessera_worker_throughput_samples_per_second'), 6);
    // Each worker computes at 4 samples / 100 ms = 40 samples/s and delivers 8: a utilization of 0.2.
    expect(series.get('tessera_worker_utilization_ratio{job_id="unit"}')).toBeCloseTo(0.2, 6);

    hub.onClose(browser, 'gone');
    const gone = await snapshot(metrics);
    expect(gone.has(browserSeries)).toBe(false);
    expect(gone.get(nodeSeries)).toBeCloseTo(8, 6);
    expect(gone.get('tessera_active_workers{job_id="unit",worker_kind="browser"}')).toBe(0);
    // The open round stopped waiting for the browser; the job now waits for a second worker: no rounds, no throughput.
    send(node, updateFor(node.assigns().at(-1)!));
    await vi.waitFor(() => expect(runner.status).toBe('waiting'));
    const waiting = await snapshot(metrics);
    expect(waiting.get(nodeSeries)).toBe(0);
    expect(waiting.has('tessera_worker_utilization_ratio{job_id="unit"}')).toBe(false);
    expect(waiting.get('tessera_job_status{job_id="unit",status="waiting"}')).toBe(1);
    expect(waiting.get('tessera_round_failures_total{job_id="unit",reason="LEFT"}')).toBe(1);
    expectMonotonic(series, waiting);
  });

  it('holds throughput at 0 once the job is paused, though the open round still closes and counts', async () => {
    const channels = await joinTwo();
    await playRound(channels, 1);
    const running = await snapshot(metrics);
    expect(total(running, 'tessera_worker_throughput_samples_per_second')).toBeCloseTo(2 * BATCH, 6);
    runner.pause();
    clock += 1000;
    for (const channel of channels) send(channel, updateFor(channel.assigns().at(-1)!));
    await vi.waitFor(() => expect(runner.job.current).toBeUndefined());
    const paused = await snapshot(metrics);
    expectMonotonic(running, paused);
    expect(paused.get('tessera_rounds_total{applied="true",job_id="unit"}')).toBe(2);
    expect(total(paused, 'tessera_samples_processed_total')).toBe(4 * BATCH);
    expect(total(paused, 'tessera_worker_throughput_samples_per_second')).toBe(0);
    expect(paused.get('tessera_job_status{job_id="unit",status="paused"}')).toBe(1);
    expect(paused.has('tessera_worker_utilization_ratio{job_id="unit"}')).toBe(false);
  });

  it("counts each refusal once: the job's rejections and the door's, by code and stage", async () => {
    const channels = await joinTwo();
    const [node, browser] = channels;
    send(node, updateFor(node.assigns()[0], { version: 7 }));
    send(browser, updateFor(browser.assigns()[0]));
    await vi.waitFor(() => expect(browser.assigns()).toHaveLength(2));
    // At the door: bytes that are not a message from a stranger, a weights hash nobody holds from a worker.
    hub.onMessage(new FakeChannel(), new Uint8Array([0xc1]));
    send(node, { type: 'fetchWeights', hash: '0'.repeat(64) });
    send(new FakeChannel(), hello({ jobId: 'nope' }));
    const series = await snapshot(metrics);
    expect(series.get('tessera_updates_rejected_total{job_id="unit",reason="STALE_VERSION",stage="job"}')).toBe(1);
    expect(series.get('tessera_updates_rejected_total{job_id="",reason="DECODE_FAILED",stage="door"}')).toBe(1);
    expect(series.get('tessera_updates_rejected_total{job_id="unit",reason="UNKNOWN_WEIGHTS",stage="door"}')).toBe(1);
    expect(series.get('tessera_updates_rejected_total{job_id="",reason="UNKNOWN_JOB",stage="door"}')).toBe(1);
    expect(total(series, 'tessera_updates_rejected_total')).toBe([...hub.refusals.values()].reduce((sum, count) => sum + count, 0));
    expect(series.get('tessera_updates_total{job_id="unit",outcome="rejected",worker_kind="node"}')).toBe(1);
    expect(series.get('tessera_updates_total{job_id="unit",outcome="accepted",worker_kind="browser"}')).toBe(1);
    expect(series.get('tessera_round_failures_total{job_id="unit",reason="STALE_VERSION"}')).toBe(1);
    expect(series.get('tessera_round_participants{job_id="unit"}')).toBe(1);
    // Weights sent on request count as bytes out.
    send(node, { type: 'fetchWeights', hash: node.assigns()[1].weightsHash });
    const fetched = await snapshot(metrics);
    expect(fetched.get('tessera_update_bytes_total{direction="out",job_id="unit",kind="weights-fetch"}')).toBe(
      (await runner.job.publishedWeights()).bytes.byteLength,
    );
    expectMonotonic(series, fetched);
  });

  it('shows trust per connected worker, quarantined and banned workers per job, and verification outcomes', async () => {
    const [node, browser] = await joinTwo();
    const [nodeId, browserId] = [node.workerId(), browser.workerId()];
    expect((await snapshot(metrics)).get(`tessera_worker_trust{job_id="unit",worker="${nodeId}",worker_kind="node"}`)).toBe(1);
    runner.verifier.ban(browserId);
    runner.verifier.refused(nodeId, ErrorCode.NonFinite);
    const after = await snapshot(metrics);
    expect(after.get(`tessera_worker_trust{job_id="unit",worker="${nodeId}",worker_kind="node"}`)).toBeCloseTo(0.9);
    expect(after.get(`tessera_worker_trust{job_id="unit",worker="${browserId}",worker_kind="browser"}`)).toBe(0);
    expect(after.get('tessera_quarantined_workers{job_id="unit",state="banned"}')).toBe(1);
    expect(after.get('tessera_quarantined_workers{job_id="unit",state="quarantined"}')).toBe(0);
    runner.verifier.emit('verdict', { round: 0, original: nodeId, copy: browserId, outcome: 'agree', distance: 0, tensor: '' });
    expect((await snapshot(metrics)).get('tessera_verifications_total{job_id="unit",outcome="agree"}')).toBe(1);
  });

  it('keeps a label value the worker invents out of the series: an unknown backend is "other"', async () => {
    const node = new FakeChannel();
    const odd = new FakeChannel();
    send(node, hello());
    send(odd, hello({ backend: 'my-very-own-backend' }));
    await vi.waitFor(() => expect(odd.assigns()).toHaveLength(1));
    await playRound([node, odd], 1);
    const series = await snapshot(metrics);
    expect(series.get('tessera_samples_processed_total{backend="other",job_id="unit",worker_kind="node"}')).toBe(BATCH);
    expect([...series.keys()].some((key) => key.includes('my-very-own-backend'))).toBe(false);
  });

  it('bounds the per-worker series: past maxWorkerSeries workers share worker="_other", and the sum still matches', async () => {
    metrics = createMetrics(hub, { now: () => clock, maxWorkerSeries: 1 });
    const channels = await joinTwo();
    for (let round = 0; round < 4; round += 1) await playRound(channels, 0.5);
    const series = await snapshot(metrics);
    const throughput = [...series.keys()].filter((key) => key.startsWith('tessera_worker_throughput_samples_per_second{'));
    expect(throughput).toHaveLength(2);
    expect(throughput.filter((key) => key.includes('worker="_other"'))).toHaveLength(1);
    // Rounds of 0.5 s, BATCH samples from each worker.
    expect(total(series, 'tessera_worker_throughput_samples_per_second')).toBeCloseTo(4 * BATCH, 6);
    // The one in _other leaves: its share goes at once, its place is not taken by a label of its own.
    const other = channels.find((channel) => !throughput.some((key) => key.includes(channel.workerId())))!;
    hub.onClose(other, 'gone');
    const left = await snapshot(metrics);
    expect(total(left, 'tessera_worker_throughput_samples_per_second', { worker: '_other' })).toBe(0);
  });

  it('labels only the loss names the model declares and only known reasons, whatever a summary holds', async () => {
    const channels = await joinTwo();
    await playRound(channels, 1);
    runner.emit('round', { ...runner.lastRound!, losses: { d: 1, evil: 2 }, failures: [{ workerId: 'x', code: 'MADE_UP' as ErrorCode, message: '' }] }, []);
    const series = await snapshot(metrics);
    expect([...series.keys()].some((key) => key.includes('evil') || key.includes('MADE_UP'))).toBe(false);
    expect(series.get('tessera_round_failures_total{job_id="unit",reason="OTHER"}')).toBe(1);
  });

  it('follows a job added later, with its checkpoints: duration, size and age', async () => {
    const second = makeRunner('second', { minWorkers: 1, checkpointEvery: 1 });
    hub.addRunner(second);
    const checkpoint = new Promise<number>((resolve) => second.once('checkpoint', (_path, _round, _ms, bytes) => resolve(bytes)));
    const channel = new FakeChannel();
    send(channel, hello({ jobId: 'second' }));
    await vi.waitFor(() => expect(channel.assigns()).toHaveLength(1));
    const before = await snapshot(metrics);
    expect(before.has('tessera_checkpoint_age_seconds{job_id="second"}')).toBe(false);
    await playRound([channel], 1);
    const bytes = await checkpoint;
    second.outputs.lastCheckpointAt = clock - 4_000;
    const series = await snapshot(metrics);
    expect(series.get('tessera_samples_processed_total{backend="wasm",job_id="second",worker_kind="node"}')).toBe(BATCH);
    expect(series.get('tessera_checkpoint_duration_seconds_count{job_id="second"}')).toBe(1);
    expect(series.get('tessera_checkpoint_bytes{job_id="second"}')).toBe(bytes);
    expect(bytes).toBeGreaterThan(0);
    expect(series.get('tessera_checkpoint_age_seconds{job_id="second"}')).toBe(4);
    expect(series.get('tessera_job_version{job_id="unit"}')).toBe(0);
    expect(series.get('tessera_active_workers{job_id="second",worker_kind="node"}')).toBe(1);
    expectMonotonic(before, series);
  });

  it('renders the Prometheus text format, with default process metrics unprefixed', async () => {
    const text = await metrics.render();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain('# TYPE tessera_round_duration_seconds histogram');
    expect(text).toContain('# TYPE tessera_samples_processed_total counter');
    expect(text).toContain('tessera_job_status{job_id="unit",status="waiting"} 1');
    expect(text).toMatch(/^process_cpu_seconds_total /m);
  });

  it('follows Prometheus naming: a tessera_ prefix, _total on counters only, base units, no clash with target labels', async () => {
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      if (!metric.name.startsWith('tessera_')) continue;
      expect(metric.name.endsWith('_total'), metric.name).toBe(String(metric.type) === 'counter');
      expect(metric.name, 'base units: seconds and bytes').not.toMatch(/_(ms|milliseconds|minutes|kb|mb|kilobytes|megabytes)(_|$)/);
      for (const value of metric.values) {
        expect(Object.keys(value.labels)).not.toContain('job');
        expect(Object.keys(value.labels)).not.toContain('instance');
      }
    }
  });

  it('the Grafana dashboard is well-formed and queries only metrics this module exports', async () => {
    const dashboard = JSON.parse(fs.readFileSync(new URL('../deploy/grafana-dashboard.json', import.meta.url), 'utf8'));
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.__inputs).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }));
    const exported = new Set<string>();
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      exported.add(metric.name);
      if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(metric.name + suffix);
    }
    const exprs: string[] = [];
    for (const panel of dashboard.panels) {
      if (panel.type === 'row') continue;
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      exprs.push(...panel.targets.map((target: { expr: string }) => target.expr));
    }
    exprs.push(dashboard.templating.list[0].query.query);
    const titles = dashboard.panels.map((panel: { title: string }) => panel.title);
    for (const wanted of [
      'Aggregate samples/s',
      'Per-worker throughput',
      'Losses',
      'Round duration',
      'Participants and failures',
      'Active workers by kind',
      'Update bytes in/out',
      'Rejected updates by reason',
      'Checkpoint age',
      'Fréchet distance and floor',
    ]) {
      expect(titles).toContain(wanted);
    }
    for (const expr of exprs) {
      // Metric names are the identifiers that start with the prefix; PromQL functions, labels and keywords do not.
      const names = expr.match(/\btessera_[a-z_]+/g) ?? [];
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${name} in ${expr}`).toContain(name);
    }
  });
});
