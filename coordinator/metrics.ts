import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ErrorCode } from '../shared/protocol/errors.ts';
import type { Hub } from './hub.ts';
import { addQualityMetrics } from './quality/prometheus.ts';
import type { RoundSummary } from './job/round.ts';
import type { JobRunner } from './job/runner.ts';
import type { JobStatus } from '../shared/api/jobs.ts';
import type { WorkerSession } from './workers.ts';

/*
 * Label conventions, kept the same on every metric so series join on them:
 * - `job_id`, not `job`: Prometheus attaches `job` (and `instance`) to every
 *   scraped series itself and renames a clashing label to `exported_job`.
 * - `worker_kind` is the worker's kind everywhere ('node' | 'browser');
 *   `kind` on the byte counter is the kind of traffic.
 * - Every label takes values from a small fixed set (error codes, statuses,
 *   backends, loss names the model declares) or from the job ids, which the
 *   operator creates; a value from a worker outside its set is never a label
 *   (an unknown backend is 'other', a code that is not an ErrorCode 'OTHER').
 *   The one per-worker label is `worker` on the throughput gauge: a series
 *   lives only while its worker is connected, and only the first
 *   MAX_WORKER_SERIES workers of a job get one; the others share
 *   worker="_other" (per worker_kind), so the sum over `worker` still matches
 *   the job's rate and the series count stays bounded whatever joins.
 */

/** Backends the Node and browser workers know (runtime/node/backend.ts, browser-worker/backends.ts; not imported: both load tfjs). */
const KNOWN_BACKENDS = new Set(['tensorflow', 'webgpu', 'webgl', 'wasm', 'cpu']);
/** Every status, as an object so the type checker flags a status added to JobStatus and missing here. */
const JOB_STATUSES = Object.keys({ waiting: true, running: true, paused: true, finished: true, stopped: true } satisfies Record<
  JobStatus,
  true
>) as JobStatus[];
const WORKER_KINDS: readonly WorkerSession['kind'][] = ['node', 'browser'];
/** Workers of one job with a throughput series of their own: enough to tell a cluster's machines apart, few enough for any Prometheus. */
const MAX_WORKER_SERIES = 100;
/** The `worker` label of the series shared by the workers beyond MAX_WORKER_SERIES. */
export const OTHER_WORKERS = '_other';
/** Reasons a round failure or refusal may be labelled with: the error codes and the runner's own two. */
const REASONS = new Set<string>([...Object.values(ErrorCode), 'LEFT', 'DEADLINE']);
/** A reason label from a known set only. */
const reasonLabel = (code: string) => (REASONS.has(code) ? code : 'OTHER');
/**
 * Time constant of the per-worker throughput: an exponential window's mean
 * age equals this, as a 1-minute rate() window's mean age is 30 s, so the
 * gauge and `rate(tessera_samples_processed_total[1m])` see the same past.
 */
const THROUGHPUT_TIME_CONSTANT_SECONDS = 30;
/** 0.1 s (a tiny model on a GPU) to 10 min (far past the default 60 s round deadline). */
const ROUND_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** A checkpoint of ~8 MB takes ~10 ms on a local disk; seconds mean a slow or remote volume. */
const CHECKPOINT_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface MetricsOptions {
  /** Wall clock in ms (tests pass their own). */
  now?: () => number;
  /** Time constant of `tessera_worker_throughput_samples_per_second`. */
  throughputTimeConstantSeconds?: number;
  /** Workers of one job with a throughput series of their own (default MAX_WORKER_SERIES); the rest share worker="_other". */
  maxWorkerSeries?: number;
}

export interface Metrics {
  registry: Registry;
  /** The Content-Type header for `render()`'s text. */
  contentType: string;
  /** The registry in the Prometheus text format, as a scrape of /metrics expects. */
  render(): Promise<string>;
}

/**
 * Samples per second per worker over recent wall-clock time: the samples each
 * worker contributed and the time that passed, both summed with weights that
 * decay with age. Every worker shares one elapsed time, so the per-worker
 * rates add up exactly to the decayed rate of all samples.
 */
export class ContributionRates {
  private elapsedSeconds = 0;
  private readonly samples = new Map<string, number>();

  constructor(private readonly timeConstantSeconds: number) {}

  /** One round: `seconds` of wall time in which each listed worker contributed its samples. */
  addRound(seconds: number, contributions: Iterable<readonly [workerId: string, samples: number]>): void {
    const decay = Math.exp(-seconds / this.timeConstantSeconds);
    this.elapsedSeconds = this.elapsedSeconds * decay + seconds;
    for (const [workerId, samples] of this.samples) this.samples.set(workerId, samples * decay);
    for (const [workerId, samples] of contributions) this.samples.set(workerId, (this.samples.get(workerId) ?? 0) + samples);
  }

  rate(workerId: string): number {
    return this.elapsedSeconds > 0 ? (this.samples.get(workerId) ?? 0) / this.elapsedSeconds : 0;
  }

  workers(): string[] {
    return [...this.samples.keys()];
  }

  remove(workerId: string): void {
    this.samples.delete(workerId);
  }

  /** Forgets the past but keeps the workers (at 0): the job stopped running. */
  restart(): void {
    this.elapsedSeconds = 0;
    for (const workerId of this.samples.keys()) this.samples.set(workerId, 0);
  }
}

/** What the metrics remember of one job between its events. */
interface JobTracking {
  rates: ContributionRates;
  /** When the previous round closed, while the job has run without a break since. */
  previousCloseAt: number | undefined;
  /** Each tracked worker's kind, as its throughput series is labelled. */
  kinds: Map<string, string>;
  /** Tracked workers with a series of their own (at most MAX_WORKER_SERIES); the rest are in `_other`. */
  named: Set<string>;
  /** Kinds that have an `_other` series. */
  otherKinds: Set<string>;
}

/**
 * The coordinator's Prometheus metrics, in a registry of their own: counters
 * and histograms follow the hub's and the runners' events; state (connected
 * workers, status, version, checkpoint age) is read at scrape time.
 */
export function createMetrics(hub: Hub, options: MetricsOptions = {}): Metrics {
  const now = options.now ?? Date.now;
  const timeConstant = options.throughputTimeConstantSeconds ?? THROUGHPUT_TIME_CONSTANT_SECONDS;
  const maxWorkerSeries = options.maxWorkerSeries ?? MAX_WORKER_SERIES;
  const registry = new Registry();
  // Unprefixed on purpose: process_* and nodejs_* are the names every Node.js dashboard and alert expects;
  // the scrape's job and instance labels already say which process they describe.
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const tracking = new Map<string, JobTracking>();
  const trackingOf = (jobId: string): JobTracking => {
    let entry = tracking.get(jobId);
    if (!entry)
      tracking.set(
        jobId,
        (entry = { rates: new ContributionRates(timeConstant), previousCloseAt: undefined, kinds: new Map(), named: new Set(), otherKinds: new Set() }),
      );
    return entry;
  };
  const sessionOf = (workerId: string) => hub.sessions.get(workerId);
  const kindOf = (workerId: string) => sessionOf(workerId)?.kind ?? 'unknown';
  const backendOf = (workerId: string) => {
    const backend = sessionOf(workerId)?.backend;
    // The backend is the worker's own word: an unknown one is 'other', so a worker cannot mint label values.
    return backend === undefined ? 'unknown' : KNOWN_BACKENDS.has(backend) ? backend : 'other';
  };

  addQualityMetrics(registers, hub);
  const samplesProcessed = new Counter({
    name: 'tessera_samples_processed_total',
    help: 'Training samples in accepted updates, counted when their round closes.',
    labelNames: ['job_id', 'worker_kind', 'backend'],
    registers,
  });
  const updates = new Counter({
    name: 'tessera_updates_total',
    help: 'Updates the job judged, by outcome (accepted: in a round summary; rejected: refused by the job, also in tessera_updates_rejected_total).',
    labelNames: ['job_id', 'worker_kind', 'outcome'],
    registers,
  });
  const partials = new Counter({
    name: 'tessera_aggregator_partials_total',
    help: 'Partial sums aggregator processes sent and the job added to a round (one per aggregator per round; docs/aggregators.md).',
    labelNames: ['job_id'],
    registers,
  });
  const partialUpdates = new Counter({
    name: 'tessera_aggregator_updates_total',
    help: "Updates that reached the job folded inside aggregators' partials rather than one by one (also in tessera_updates_total when their round closes).",
    labelNames: ['job_id'],
    registers,
  });
  const partialBytes = new Counter({
    name: 'tessera_aggregator_partial_bytes_total',
    help: 'Bytes of the partials the job received from aggregators.',
    labelNames: ['job_id'],
    registers,
  });
  const rejected = new Counter({
    name: 'tessera_updates_rejected_total',
    help: 'Worker messages refused, by error code: stage="job" for updates the job rejected, stage="door" for messages the hub refused before any job saw them (job_id is empty when the sender had not joined one). Each refusal counts once.',
    labelNames: ['job_id', 'reason', 'stage'],
    registers,
  });
  const roundDuration = new Histogram({
    name: 'tessera_round_duration_seconds',
    help: 'Wall time from opening a round to closing it.',
    labelNames: ['job_id'],
    buckets: ROUND_DURATION_BUCKETS,
    registers,
  });
  const rounds = new Counter({
    name: 'tessera_rounds_total',
    help: 'Rounds closed; applied="false" when no update arrived and the weights stayed as they were.',
    labelNames: ['job_id', 'applied'],
    registers,
  });
  const participants = new Gauge({
    name: 'tessera_round_participants',
    help: 'Accepted updates in the last closed round.',
    labelNames: ['job_id'],
    registers,
  });
  const roundFailures = new Counter({
    name: 'tessera_round_failures_total',
    help: 'Workers assigned work whose update did not count, by reason (an error code, LEFT or DEADLINE).',
    labelNames: ['job_id', 'reason'],
    registers,
  });
  const updateBytes = new Counter({
    name: 'tessera_update_bytes_total',
    help: 'Tensor bytes between coordinator and workers: direction="in" kind="update" (accepted gradients; the codec is the job\'s training.codec), direction="out" kind="weights-push" (sent with an assignment), "weights-fetch" (asked for) or "weights-broadcast".',
    labelNames: ['job_id', 'direction', 'kind'],
    registers,
  });
  const verifications = new Counter({
    name: 'tessera_verifications_total',
    help: 'Duplicate assignments compared, by outcome: agree (within training.verification.tolerance), disputed (sent to the referee), unresolved (no referee could take it: soft mismatches).',
    labelNames: ['job_id', 'outcome'],
    registers,
  });
  const rulings = new Counter({
    name: 'tessera_referee_rulings_total',
    help: 'Sides of disputed pairs the coordinator recomputed, by whether the worker agreed with the recomputation.',
    labelNames: ['job_id', 'agrees'],
    registers,
  });
  const loss = new Gauge({
    name: 'tessera_loss',
    help: 'Losses of the last round that applied updates, averaged over its samples.',
    labelNames: ['job_id', 'name'],
    registers,
  });
  const checkpointDuration = new Histogram({
    name: 'tessera_checkpoint_duration_seconds',
    help: 'Time to write one checkpoint.',
    labelNames: ['job_id'],
    buckets: CHECKPOINT_DURATION_BUCKETS,
    registers,
  });
  const checkpointBytes = new Gauge({
    name: 'tessera_checkpoint_bytes',
    help: 'Size of the last checkpoint written.',
    labelNames: ['job_id'],
    registers,
  });
  const workerThroughput = new Gauge({
    name: 'tessera_worker_throughput_samples_per_second',
    help: `Samples each connected worker contributed per second of wall time, decayed with a ${timeConstant} s time constant; the sum over workers matches rate(tessera_samples_processed_total[1m]). 0 while the job is not running; gone when the worker leaves.`,
    labelNames: ['job_id', 'worker', 'worker_kind'],
    registers,
  });

  new Gauge({
    name: 'tessera_active_workers',
    help: 'Workers connected now.',
    labelNames: ['job_id', 'worker_kind'],
    registers,
    collect() {
      this.reset();
      for (const jobId of hub.runners.keys()) for (const kind of WORKER_KINDS) this.set({ job_id: jobId, worker_kind: kind }, 0);
      for (const session of hub.sessions.values()) if (session.channel) this.inc({ job_id: session.jobId, worker_kind: session.kind });
    },
  });
  new Gauge({
    name: 'tessera_quarantined_workers',
    help: 'Workers whose updates the job does not aggregate, connected or not: state="quarantined" by their trust score, state="banned" by an admin.',
    labelNames: ['job_id', 'state'],
    registers,
    collect() {
      for (const [jobId, runner] of hub.runners) {
        const { quarantined, banned } = runner.verifier.flagged();
        this.set({ job_id: jobId, state: 'quarantined' }, quarantined);
        this.set({ job_id: jobId, state: 'banned' }, banned);
      }
    },
  });
  new Gauge({
    name: 'tessera_worker_trust',
    help: 'Trust score (0 to 1) of each connected worker; below training.verification.quarantineBelow it is quarantined. Same series bound as the throughput gauge: one per connected worker.',
    labelNames: ['job_id', 'worker', 'worker_kind'],
    registers,
    collect() {
      this.reset();
      for (const session of hub.sessions.values()) {
        if (session.channel && hub.runners.has(session.jobId))
          this.set({ job_id: session.jobId, worker: session.id, worker_kind: session.kind }, session.trust?.score ?? 1);
      }
    },
  });
  new Gauge({
    name: 'tessera_job_version',
    help: 'Training steps applied (the version of the master weights).',
    labelNames: ['job_id'],
    registers,
    collect() {
      for (const [jobId, runner] of hub.runners) this.set({ job_id: jobId }, runner.job.state.version);
    },
  });
  new Gauge({
    name: 'tessera_job_status',
    help: "The job's status: 1 for the current one, 0 for the others.",
    labelNames: ['job_id', 'status'],
    registers,
    collect() {
      for (const [jobId, runner] of hub.runners) for (const status of JOB_STATUSES) this.set({ job_id: jobId, status }, runner.status === status ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tessera_checkpoint_age_seconds',
    help: 'Time since the last checkpoint was written; absent until the first one.',
    labelNames: ['job_id'],
    registers,
    collect() {
      this.reset();
      for (const [jobId, runner] of hub.runners) {
        if (runner.outputs.lastCheckpointAt !== undefined) this.set({ job_id: jobId }, Math.max(0, now() - runner.outputs.lastCheckpointAt) / 1000);
      }
    },
  });
  // The autoscaling signal. The job config names no wanted throughput, and more workers do not finish a round budget sooner (each adds
  // batchSize samples to every round; the rounds stay as many), so neither a work queue nor a throughput gap can be computed honestly.
  // What more workers buy is samples per second, as long as the coordinator and the slowest worker keep up; this ratio says whether they
  // do. Throughput counts wall time of whole rounds, so waiting for stragglers, the deadline, the network and aggregation all lower it.
  new Gauge({
    name: 'tessera_worker_utilization_ratio',
    help: "Accepted samples per second over the connected workers' own compute speed (sum of tessera_worker_throughput_samples_per_second / sum of measured compute samples/s). 1 means workers never wait. For a worker autoscaler with a Value target (like CPU utilization): above target the job has headroom for more workers, below it they wait on stragglers, deadlines or the coordinator. Absent while the job is not running.",
    labelNames: ['job_id'],
    registers,
    collect() {
      this.reset();
      for (const [jobId, runner] of hub.runners) {
        const entry = tracking.get(jobId);
        if (runner.status !== 'running' || !entry) continue;
        const connected = [...hub.sessions.values()].filter((session) => session.jobId === jobId && session.channel);
        const capacity = connected.reduce((sum, session) => sum + session.samplesPerSecond, 0);
        const actual = connected.reduce((sum, session) => sum + entry.rates.rate(session.id), 0);
        if (capacity > 0) this.set({ job_id: jobId }, actual / capacity);
      }
    },
  });

  function setThroughput(jobId: string, entry: JobTracking): void {
    const others = new Map<string, number>();
    for (const workerId of entry.rates.workers()) {
      const kind = entry.kinds.get(workerId) ?? 'unknown';
      if (entry.named.has(workerId)) workerThroughput.set({ job_id: jobId, worker: workerId, worker_kind: kind }, entry.rates.rate(workerId));
      else others.set(kind, (others.get(kind) ?? 0) + entry.rates.rate(workerId));
    }
    for (const kind of others.keys()) entry.otherKinds.add(kind);
    for (const kind of entry.otherKinds) workerThroughput.set({ job_id: jobId, worker: OTHER_WORKERS, worker_kind: kind }, others.get(kind) ?? 0);
  }

  /** Starts tracking a worker's throughput: a series of its own while there is room, else a share of `_other`. */
  function track(entry: JobTracking, workerId: string): void {
    if (entry.kinds.has(workerId)) return;
    entry.kinds.set(workerId, kindOf(workerId));
    if (entry.named.size < maxWorkerSeries && workerId !== OTHER_WORKERS) entry.named.add(workerId);
  }

  function onRound(runner: JobRunner, summary: RoundSummary): void {
    const jobId = runner.job.config.id;
    const closedAt = now();
    for (const update of summary.updates) {
      const kind = kindOf(update.workerId);
      samplesProcessed.inc({ job_id: jobId, worker_kind: kind, backend: backendOf(update.workerId) }, update.samples);
      updates.inc({ job_id: jobId, worker_kind: kind, outcome: 'accepted' });
      updateBytes.inc({ job_id: jobId, direction: 'in', kind: 'update' }, update.bytes);
    }
    for (const failure of summary.failures) roundFailures.inc({ job_id: jobId, reason: reasonLabel(failure.code) });
    roundDuration.observe({ job_id: jobId }, summary.durationMs / 1000);
    rounds.inc({ job_id: jobId, applied: String(summary.applied) });
    participants.set({ job_id: jobId }, summary.updates.length);
    // The job refuses other names; checked again here because a label is forever.
    const lossNames = runner.job.spec.lossNames;
    if (summary.applied) for (const [name, value] of Object.entries(summary.losses)) if (lossNames.includes(name)) loss.set({ job_id: jobId, name }, value);

    // The last round of a pause or a stop closes after the status changed: the job no longer runs, its throughput stays 0.
    if (runner.status !== 'running') return;
    const entry = trackingOf(jobId);
    // Wall time since the previous round closed, so the time spent publishing weights between rounds counts too, as it does in rate().
    const seconds = Math.max(summary.durationMs, entry.previousCloseAt === undefined ? 0 : closedAt - entry.previousCloseAt) / 1000;
    entry.previousCloseAt = closedAt;
    // A worker that left before its round closed has no series any more; its samples stay in the counter only.
    const contributions = summary.updates.filter((update) => sessionOf(update.workerId)?.channel).map((update) => [update.workerId, update.samples] as const);
    for (const [workerId] of contributions) track(entry, workerId);
    // Assigned workers that contributed nothing still get a series, at 0.
    const idle = summary.failures.filter((failure) => sessionOf(failure.workerId)?.channel && !entry.kinds.has(failure.workerId));
    for (const failure of idle) track(entry, failure.workerId);
    entry.rates.addRound(seconds, [...contributions, ...idle.map((failure) => [failure.workerId, 0] as const)]);
    setThroughput(jobId, entry);
  }

  function onStatus(jobId: string, status: JobStatus): void {
    if (status === 'running') return;
    // No rounds run: the rate is 0 now, and the gap until the next round is not throughput time.
    const entry = trackingOf(jobId);
    entry.previousCloseAt = undefined;
    entry.rates.restart();
    setThroughput(jobId, entry);
  }

  function onRejected(jobId: string, workerId: string, code: ErrorCode): void {
    rejected.inc({ job_id: jobId, reason: reasonLabel(code), stage: 'job' });
    updates.inc({ job_id: jobId, worker_kind: kindOf(workerId), outcome: 'rejected' });
  }

  const attached = new WeakSet<JobRunner>();
  function attach(runner: JobRunner): void {
    if (attached.has(runner)) return;
    attached.add(runner);
    const jobId = runner.job.config.id;
    runner.on('round', (summary) => onRound(runner, summary));
    runner.on('status', (status) => onStatus(jobId, status));
    // The hub counts these in its refusals but does not emit them as 'refused': counted here, once.
    runner.on('rejected', (workerId, error) => onRejected(jobId, workerId, error.code));
    runner.on('partial', (_aggregatorId, _round, folded, bytes) => {
      partials.inc({ job_id: jobId });
      partialUpdates.inc({ job_id: jobId }, folded);
      partialBytes.inc({ job_id: jobId }, bytes);
    });
    runner.verifier.on('verdict', (verdict) => verifications.inc({ job_id: jobId, outcome: verdict.outcome }));
    runner.verifier.on('ruling', (ruling) => rulings.inc({ job_id: jobId, agrees: String(ruling.agrees) }));
    runner.on('checkpoint', (_path, _round, durationMs, bytes) => {
      checkpointDuration.observe({ job_id: jobId }, durationMs / 1000);
      checkpointBytes.set({ job_id: jobId }, bytes);
    });
  }
  for (const runner of hub.runners.values()) attach(runner);
  hub.on('jobAdded', attach);
  hub.on('bytesOut', (jobId, bytes, kind) => updateBytes.inc({ job_id: jobId, direction: 'out', kind }, bytes));
  hub.on('refused', (code, _field, channel) => {
    const session = hub.sessionOf(channel);
    rejected.inc({ job_id: session?.jobId ?? '', reason: reasonLabel(code), stage: 'door' });
  });
  hub.on('left', (session) => {
    const entry = tracking.get(session.jobId);
    if (!entry?.kinds.has(session.id)) return;
    if (entry.named.delete(session.id)) workerThroughput.remove({ job_id: session.jobId, worker: session.id, worker_kind: entry.kinds.get(session.id)! });
    entry.kinds.delete(session.id);
    entry.rates.remove(session.id);
    // Its share leaves `_other` now, not at the next round.
    if (entry.otherKinds.size > 0) setThroughput(session.jobId, entry);
  });

  return { registry, contentType: registry.contentType, render: () => registry.metrics() };
}
