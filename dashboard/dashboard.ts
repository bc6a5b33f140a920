/// <reference lib="dom" />
import 'uplot/dist/uPlot.min.css';
import type { ErrorBody } from '../shared/api/errors.ts';
import type { JobEvents, JobSnapshot } from '../shared/api/events.ts';
import type { JobDescription, JobList } from '../shared/api/jobs.ts';
import type { RoundRow } from '../shared/api/round-log.ts';
import type { WorkerRow } from '../shared/api/workers.ts';
import { RoundChart } from './chart.ts';
import { formatBytes, formatCount, formatDuration, formatRate } from './format.ts';
import { ClockOffset, describeMix, recentPace, workerMix } from './headline.ts';
import { QualityPanel } from './quality-panel.ts';
import { lossesOf, participationOf, throughputOf, TOTAL_KEY, trafficOf, WORKER_KEY, type XAxis } from './series.ts';
import { renderWorkers } from './workers-table.ts';

/**
 * The job dashboard: one EventSource on the job's events, nothing polled. The
 * `snapshot` event (sent again on every reconnect) replaces everything shown;
 * `round`, `workers`, `status`, `samples` and `quality` events then add to it.
 * Their data, and the API's answers, are typed in shared/api/.
 */

const params = new URLSearchParams(location.search);
/** A read token in the page's own URL goes along on every API call (EventSource cannot send headers). */
const token = params.get('token') ?? undefined;
const requestedJob = params.get('job') ?? decodeURIComponent(location.pathname.match(/^\/dashboard\/([^/]+)/)?.[1] ?? '');
const withToken = (path: string) => (token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path);
const $ = (id: string) => document.getElementById(id)!;

const WORKER_COLORS = ['#2f80ed', '#27ae60', '#e67e22', '#9b51e0', '#eb5757', '#00a3a3', '#c2a000', '#7f8c8d'];
const LOSS_COLORS = ['#c0392b', '#2f80ed', '#27ae60', '#9b51e0', '#e67e22'];
const TOTAL_COLOR = '#1d2430';

const workerNames = new Map<string, string>();
const workerLabel = (workerId: string) => workerNames.get(workerId) ?? workerId;
let workerSeries = 0;

const charts = {
  throughput: new RoundChart($('chart-throughput'), {
    axes: [{ scale: 'rate', label: 'samples/s' }],
    style: (key) =>
      key === TOTAL_KEY
        ? { label: 'all workers', stroke: TOTAL_COLOR, width: 2.5, value: formatRate }
        : { label: workerLabel(key.slice(WORKER_KEY.length)), stroke: WORKER_COLORS[workerSeries++ % WORKER_COLORS.length], value: formatRate },
  }),
  losses: new RoundChart($('chart-losses'), {
    axes: [{ scale: 'loss', label: 'loss' }],
    style: (key, index) => ({ label: key.toUpperCase(), stroke: LOSS_COLORS[index % LOSS_COLORS.length] }),
  }),
  participation: new RoundChart($('chart-participation'), {
    axes: [
      { scale: 'ms', label: 'duration', format: formatDuration },
      { scale: 'count', label: 'workers' },
    ],
    style: (key) =>
      key === 'durationMs'
        ? { label: 'duration', stroke: TOTAL_COLOR, scale: 'ms', value: formatDuration }
        : key === 'updates'
          ? { label: 'updates', stroke: '#27ae60', scale: 'count', stepped: true, value: String }
          : { label: 'failures', stroke: '#c0392b', scale: 'count', stepped: true, dash: [4, 3], value: String },
  }),
  traffic: new RoundChart($('chart-traffic'), {
    axes: [{ scale: 'bytes', label: 'bytes', format: formatBytes }],
    style: () => ({ label: 'update bytes', stroke: '#2f80ed', value: formatBytes }),
  }),
};

// Not among `charts`: it has points only every output.evalEvery rounds.
const quality = new QualityPanel({ chart: $('chart-quality'), latest: $('quality-latest'), every: $('quality-every'), samples: $('quality-samples') });

let job: JobDescription | undefined;
let workers: WorkerRow[] = [];
let lastRound: RoundRow | undefined;
/** Rounds of the last few minutes, for the headline (the charts keep their own). */
let recentRounds: RoundRow[] = [];
const RECENT_KEPT_MS = 5 * 60_000;
const coordinatorClock = new ClockOffset();

function showStatus(status: string, diverged?: string): void {
  $('status').textContent = status;
  $('status').dataset.status = status;
  // A job that paused itself says why: its training diverged, and how to go on.
  $('status-text').textContent = diverged ? `${status}: ${diverged}` : status;
}

function showConnection(connection: 'connecting' | 'live' | 'reconnecting' | 'closed'): void {
  $('connection').textContent = connection;
  $('connection').dataset.connection = connection;
}

function showState(): void {
  if (!job) return;
  $('round').textContent = formatCount(job.round);
  $('version').textContent = formatCount(job.version);
  $('samples-seen').textContent = formatCount(job.samplesSeen);
  $('workers-connected').textContent = String(workers.filter((worker) => worker.connected).length);
  $('last-round').textContent = lastRound
    ? `${lastRound.round} (${formatDuration(lastRound.durationMs)}, ${lastRound.updates.length} updates, ${lastRound.failures.length} failures)`
    : '–';
  $('rate').textContent = lastRound ? formatRate(lastRound.samplesPerSecond) : '–';
  $('losses').textContent = lastRound
    ? Object.entries(lastRound.losses)
        .map(([name, value]) => `${name} ${value.toFixed(3)}`)
        .join(', ') || '–'
    : '–';
}

/** The headline row: the job's throughput and round rate over the last minute, and the fleet by kind and backend. */
function showHeadline(): void {
  const pace = recentPace(recentRounds, coordinatorClock.coordinatorNow(Date.now()));
  $('headline-rate').textContent = formatRate(pace.samplesPerSecond);
  $('headline-rounds').textContent = pace.roundsPerMinute.toFixed(1);
  const span = pace.spanMs < 59_500 ? `last ${Math.round(pace.spanMs / 1000)} s` : 'last minute';
  $('headline-rate-span').textContent = span;
  $('headline-rounds-span').textContent = span;
  const groups = workerMix(workers);
  $('headline-workers').textContent = String(groups.reduce((sum, group) => sum + group.count, 0));
  $('headline-mix').textContent = describeMix(groups);
}

function showWorkers(rows: WorkerRow[]): void {
  workers = rows;
  for (const worker of rows) {
    workerNames.set(worker.id, worker.name);
    charts.throughput.relabel(WORKER_KEY + worker.id, worker.name);
  }
  renderWorkers($('workers') as HTMLTableSectionElement, rows, Date.now());
  showState();
  showHeadline();
}

function addRound(row: RoundRow): void {
  const closedAt = Date.parse(row.closedAt);
  charts.throughput.push(row.round, throughputOf(row), closedAt);
  charts.losses.push(row.round, lossesOf(row), closedAt);
  charts.participation.push(row.round, participationOf(row), closedAt);
  charts.traffic.push(row.round, trafficOf(row), closedAt);
  lastRound = row;
  recentRounds.push(row);
  const keepAfter = closedAt - RECENT_KEPT_MS;
  while (recentRounds.length > 0 && Date.parse(recentRounds[0].closedAt) < keepAfter) recentRounds.shift();
}

/** Every chart against rounds or against wall time; the choice stays in the address, so a reload keeps it. */
function setAxis(axis: XAxis): void {
  for (const chart of Object.values(charts)) chart.setAxis(axis);
  quality.setAxis(axis);
  document.querySelectorAll<HTMLButtonElement>('[data-axis]').forEach((button) => button.setAttribute('aria-pressed', String(button.dataset.axis === axis)));
  const url = new URL(location.href);
  url.searchParams.set('x', axis);
  history.replaceState(null, '', url);
}

function showSamples(url: string, round?: number): void {
  const image = $('samples') as HTMLImageElement;
  image.onload = () => {
    image.dataset.loaded = 'true';
    $('samples-caption').textContent = round === undefined ? 'latest samples' : `samples after round ${round}`;
  };
  // Before the first grid is written latest.png is a 404: keep the placeholder.
  image.onerror = () => (image.dataset.loaded = image.naturalWidth > 0 ? 'true' : 'false');
  image.src = withToken(url);
}

function onSnapshot(snapshot: JobSnapshot): void {
  job = snapshot.job;
  lastRound = undefined;
  recentRounds = [];
  for (const chart of Object.values(charts)) chart.reset();
  workerSeries = 0;
  document.title = `Tessera · ${job.id}`;
  $('job').textContent = job.id;
  $('model').textContent = `${job.config.model.id} on ${job.config.dataset.id}, batch ${job.config.training.batchSize} per worker`;
  $('config').textContent = JSON.stringify(job.config, null, 2);
  showStatus(job.status, job.diverged?.message);
  // Names first, so the throughput series get them as labels.
  for (const worker of job.workers) workerNames.set(worker.id, worker.name);
  for (const row of snapshot.rounds) addRound(row);
  quality.reset(job.config.output, snapshot.quality);
  showWorkers(job.workers);
  showHeadline();
  if (job.round > 0) showSamples(`/api/jobs/${encodeURIComponent(job.id)}/samples/latest.png?round=${job.round}`);
}

function onRound(row: RoundRow): void {
  coordinatorClock.observe(row.closedAt, Date.now());
  addRound(row);
  if (job) {
    job.round = Math.max(job.round, row.round + 1);
    // The round trained on `version`; an applied round stepped the weights once.
    job.version = Math.max(job.version, row.applied ? row.version + 1 : row.version);
    if (row.applied) job.samplesSeen += row.samples;
  }
  showState();
  showHeadline();
}

function fail(message: string): void {
  $('message').textContent = message;
}

function listen(jobId: string): void {
  const events = new EventSource(withToken(`/api/jobs/${encodeURIComponent(jobId)}/events`));
  const on = <Name extends keyof JobEvents>(name: Name, handle: (data: JobEvents[Name]) => void) =>
    events.addEventListener(name, (event) => handle(JSON.parse((event as MessageEvent<string>).data) as JobEvents[Name]));
  events.onopen = () => {
    showConnection('live');
    fail('');
  };
  events.onerror = () => {
    if (events.readyState !== EventSource.CLOSED) return showConnection('reconnecting');
    // The browser gave up (a refused token, an unknown job): ask the API why.
    showConnection('closed');
    void fetch(withToken(`/api/jobs/${encodeURIComponent(jobId)}`))
      .then((response) => response.json() as Promise<Partial<ErrorBody>>)
      .then((body) => fail(body.error?.message ?? 'the event stream closed'))
      .catch(() => fail('the coordinator cannot be reached'));
  };
  on('snapshot', onSnapshot);
  on('round', onRound);
  on('workers', showWorkers);
  on('status', (status) => {
    showStatus(status.status, status.diverged);
    if (job) Object.assign(job, { status: status.status, round: status.round, version: status.version });
    showState();
  });
  on('samples', (samples) => showSamples(samples.url, samples.round));
  on('quality', (row) => quality.add(row));
}

async function start(): Promise<void> {
  if (requestedJob) return listen(requestedJob);
  const response = await fetch(withToken('/api/jobs'));
  const body = (await response.json()) as Partial<JobList & ErrorBody>;
  const first = body.jobs?.[0];
  if (!response.ok || !first) {
    showConnection('closed');
    $('job').textContent = 'no job';
    return fail(body.error?.message ?? 'no job on this coordinator');
  }
  listen(first.id);
}

// "Last seen" ages and the last minute move on between events; redrawing locally asks nothing of the coordinator.
setInterval(() => {
  if (document.hidden) return;
  if (workers.length > 0) renderWorkers($('workers') as HTMLTableSectionElement, workers, Date.now());
  showHeadline();
}, 1000);

document.querySelectorAll<HTMLButtonElement>('[data-axis]').forEach((button) => button.addEventListener('click', () => setAxis(button.dataset.axis as XAxis)));
if (params.get('x') === 'time') setAxis('time');

start().catch((error: Error) => fail(`cannot load the job: ${error.message}`));

// A hook for tests: what the page shows right now, read back from the page itself.
(globalThis as unknown as { tesseraDashboard: object }).tesseraDashboard = {
  state: () => {
    const image = $('samples') as HTMLImageElement;
    const number = (id: string) => (/^[\d.,]+$/.test($(id).textContent ?? '') ? Number($(id).textContent!.replace(/,/g, '')) : null);
    return {
      jobId: job?.id ?? null,
      status: $('status').textContent,
      connection: $('connection').dataset.connection,
      round: number('round'),
      lastRound: lastRound?.round ?? null,
      workersConnected: number('workers-connected'),
      samplesPerSecond: number('rate'),
      headline: {
        samplesPerSecond: number('headline-rate'),
        roundsPerMinute: number('headline-rounds'),
        workers: number('headline-workers'),
        mix: $('headline-mix').textContent,
      },
      xAxis: document.querySelector<HTMLButtonElement>('[data-axis][aria-pressed="true"]')?.dataset.axis ?? 'round',
      chartPoints: Object.fromEntries(Object.entries(charts).map(([name, chart]) => [name, chart.points()])),
      chartSeries: Object.fromEntries(Object.entries(charts).map(([name, chart]) => [name, chart.seriesCount()])),
      quality: quality.state(),
      tableRows: ($('workers') as HTMLTableSectionElement).rows.length,
      sampleImage: { round: image.src ? Number(new URL(image.src).searchParams.get('round')) : null, naturalWidth: image.naturalWidth },
    };
  },
};
