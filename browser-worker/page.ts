/// <reference lib="dom" />
import type { PageToWorker, TabStatus, WorkerToPage } from './messages.ts';
import { followJob } from './job-feed.ts';
import { renderStatus } from './join-view.ts';

/**
 * The join page: starts the training Web Worker, shows what it does (in
 * join-view.ts) and the job's own samples and rounds (job-feed.ts), and
 * passes on pause, resume, "join anyway" and the load limit. A tab hidden for
 * long leaves the job and comes back when shown again.
 */

/** A tab hidden this long is likely forgotten, and browsers throttle it anyway: leave until it is shown. */
const HIDDEN_LEAVE_MS = 60_000;

const params = new URLSearchParams(location.search);
const jobId = params.get('job') ?? location.pathname.match(/^\/join\/([^/]+)/)?.[1] ?? undefined;
const forcedBackend = params.get('backend') ?? undefined;
// A join link (/join?job=ID&token=T) carries the token this tab joins with; join.html keeps it out of Referer headers.
const token = params.get('token') ?? undefined;
const $ = (id: string) => document.getElementById(id)!;

const worker = new Worker('/static/browser/training.worker.js', { type: 'module' });
const send = (message: PageToWorker) => worker.postMessage(message);
let latest: TabStatus | undefined;
let hiddenTimer: ReturnType<typeof setTimeout> | undefined;
let pausedByVisibility = false;

function render(status: TabStatus): void {
  latest = status;
  renderStatus(status);
}

worker.onmessage = (event: MessageEvent<WorkerToPage>) => {
  const message = event.data;
  if (message.type === 'status') render(message.status);
  if (message.type === 'samples') {
    const canvas = $('local-samples') as HTMLCanvasElement;
    if (($('samples') as HTMLImageElement).hidden) {
      canvas.hidden = false;
      $('samples-caption').textContent = "samples drawn in this tab from the job's weights (the coordinator has drawn none yet)";
    }
    canvas.width = message.width;
    canvas.height = message.height;
    canvas.getContext('2d')!.putImageData(new ImageData(message.pixels as Uint8ClampedArray<ArrayBuffer>, message.width, message.height), 0, 0);
  }
  if (message.type === 'gradients') pendingGradients.get(message.requestId)?.(message);
};

$('toggle').addEventListener('click', () => send({ type: latest?.state === 'paused' ? 'resume' : 'pause' }));
$('join-anyway').addEventListener('click', () => send({ type: 'joinAnyway' }));
$('duty').addEventListener('change', (event) => send({ type: 'dutyCycle', value: Number((event.target as HTMLSelectElement).value) }));

document.addEventListener('visibilitychange', () => {
  clearTimeout(hiddenTimer);
  if (document.hidden) {
    hiddenTimer = setTimeout(() => {
      if (latest?.state === 'training' || latest?.state === 'connecting') {
        pausedByVisibility = true;
        send({ type: 'pause' });
      }
    }, HIDDEN_LEAVE_MS);
  } else if (pausedByVisibility) {
    pausedByVisibility = false;
    send({ type: 'resume' });
  }
});
// Leave cleanly when the tab closes; the coordinator also notices the socket closing.
addEventListener('pagehide', () => send({ type: 'stop' }));

async function describeJob(): Promise<void> {
  const response = await fetch(jobId ? `/api/jobs/${encodeURIComponent(jobId)}` : '/api/jobs');
  const body = await response.json();
  const job = jobId ? body : body.jobs?.[0];
  if (!response.ok || !job) {
    $('job').textContent = jobId ?? 'no job';
    $('message').textContent = body.error?.message ?? 'no job on this coordinator';
    return;
  }
  $('job').textContent = job.id;
  $('model').textContent = `${job.config.model.id} on ${job.config.dataset.id}`;
  followJob({ jobId: job.id, workerId: () => latest?.workerId ?? '', onGrid: (available) => send({ type: 'localSamples', enabled: !available }) });
}

void describeJob();
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const browser = navigator.userAgent.match(/(Firefox|Chrome|Safari|Edg)\/[\d.]+/)?.[0] ?? 'browser';
send({
  type: 'start',
  url: `${scheme}://${location.host}/ws`,
  origin: location.origin,
  jobId,
  token,
  backend: forcedBackend,
  name: `${browser.replace('/', ' ').replace(/\.0(\.0)*$/, '')} tab${forcedBackend ? ` (${forcedBackend})` : ''}`,
  dutyCycle: Number(($('duty') as HTMLSelectElement).value),
});

// A hook for tests: this tab's gradients on given inputs, on its backend.
const pendingGradients = new Map<number, (message: Extract<WorkerToPage, { type: 'gradients' }>) => void>();
let nextRequest = 0;
(globalThis as unknown as { tessera: object }).tessera = {
  status: () => latest,
  gradients: (request: Omit<Extract<PageToWorker, { type: 'gradients' }>, 'type' | 'requestId'>) =>
    new Promise((resolve) => {
      const requestId = ++nextRequest;
      pendingGradients.set(requestId, (message) => {
        pendingGradients.delete(requestId);
        resolve(message);
      });
      send({ type: 'gradients', requestId, ...request });
    }),
};
