/// <reference lib="webworker" />
import { decodeExamples } from '../shared/data/examples-wire.ts';
import { ShardCache } from '../shared/data/shard-cache.ts';
import { getModel } from '../shared/models/registry.ts';
import { selectBackend } from '../shared/tfjs/backends.ts';
import { sessionAuthorization } from '../shared/protocol/session-auth.ts';
import { webSocketTransport } from '../shared/transport/websocket.ts';
import type { WorkerTransport } from '../shared/transport/worker.ts';
import { WorkerClient, type WorkerEvent } from '../shared/worker/client.ts';
import { BROWSER_BACKENDS, browserCandidates, describeDevice, type BrowserBackend } from './backends.ts';
import { explainRefusal, isLate } from './explain.ts';
import type { PageToWorker, TabStatus, WorkerToPage } from './messages.ts';
import { recheckDelayMs } from './participation.ts';
import { checkSpeed, fetchJob } from './speed-check.ts';

/**
 * The tab's trainer, in a Web Worker so the page stays responsive: times each
 * backend and keeps the fastest, checks that the job's model runs fast enough
 * here to finish a share before the deadline, then runs the same WorkerClient
 * the Node worker runs, over the browser's own WebSocket, with examples
 * fetched from the coordinator. Too slow, it watches instead.
 */

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (message: WorkerToPage, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

/** Grid of samples drawn locally (until the coordinator has written one), refreshed every few accepted updates. */
const SAMPLE_EVERY = 3;
const SAMPLE_COUNT = 16;
/** Speed over the last few updates: recent enough to show a throttled tab slowing down. */
const SPEED_WINDOW = 5;

let client: WorkerClient | undefined;
/** The image shape of the job's dataset (from the welcome; MNIST's until then): the local sample grid's geometry. */
let imageShape: readonly [number, number, number] = [28, 28, 1];
/** A folder dataset's shards this tab was assigned, fetched by hash from the coordinator and kept (across reconnects). */
let shardCache: ShardCache | undefined;
/** The session's secret, kept across a pause so the tab resumes under its id (not shown to the page). */
let resumeSecret: string | undefined;
/** The client's current connection: closed at once when the tab steps back after a late update. */
let connection: WorkerTransport | undefined;
let started: Extract<PageToWorker, { type: 'start' }> | undefined;
let dutyCycle = 1;
let localSamples = true;
let backendReady: Promise<void> | undefined;
/** Speed checks (and late updates) that have kept this tab watching, and the timer of the next check. */
let watchingAttempts = 0;
let recheckTimer: ReturnType<typeof setTimeout> | undefined;
/** The person chose the backend, or to join anyway: the tab takes work whatever its speed. */
let insisted = false;
const recent: { samples: number; ms: number }[] = [];
const status: TabStatus = {
  state: 'starting',
  activity: 'none',
  backend: '',
  device: '',
  figures: [],
  skipped: [],
  speedCheck: undefined,
  jobId: '',
  workerId: '',
  samplesPerSecond: 0,
  share: 0,
  updatesAccepted: 0,
  updatesRejected: 0,
  updatesLate: 0,
  samplesContributed: 0,
  computeMsContributed: 0,
  lastRound: -1,
  losses: {},
  message: '',
};

function publish(changes: Partial<TabStatus>): void {
  Object.assign(status, changes);
  post({ type: 'status', status: { ...status } });
}

/** Times every backend this browser offers (or only the forced one) and keeps the fastest. */
async function prepareBackend(forced: string | undefined, origin: string): Promise<void> {
  if (forced && !(BROWSER_BACKENDS as readonly string[]).includes(forced)) throw new Error(`unknown backend ${forced}; known: ${BROWSER_BACKENDS.join(', ')}`);
  const candidates = browserCandidates(`${origin}/static/wasm/`, Boolean(forced));
  const order = forced ? [candidates[forced as BrowserBackend]] : BROWSER_BACKENDS.map((name) => candidates[name]);
  publish({ state: 'calibrating', message: 'timing a few steps on each backend' });
  const choice = await selectBackend(order);
  publish({ backend: choice.name, device: await describeDevice(choice.name), figures: choice.figures, skipped: choice.skipped, message: '' });
}

/**
 * Joins when this device delivers a newcomer's share within the rounds' pace
 * and well before their deadline (participation.ts); otherwise watches. A
 * forced backend, or "join anyway", skips the check: the person (or a test)
 * asked for it on purpose.
 */
async function joinIfFastEnough(): Promise<void> {
  const start = started!;
  if (!insisted) {
    publish({ message: 'timing a round of the job on this device' });
    const job = await fetchJob(start.origin, start.jobId);
    imageShape = job.data.imageShape;
    const { check, trainer } = await checkSpeed(start.origin, job, 1 / dutyCycle);
    // The rehearsal's trainer holds the current weights: samples now, before this tab has trained.
    await sendSamples(trainer).finally(() => trainer.dispose());
    publish({ speedCheck: check });
    if (!check.join) return spectate(check.reason);
  }
  connect();
}

/**
 * Leaves the job (if in it) and watches; checks its speed again later, and
 * the page offers to join anyway. After a late update the share in hand is
 * late too: `leaveNow` closes the connection at once instead of delivering
 * it, so its round stops waiting for this tab now rather than at its deadline.
 */
async function spectate(reason: string, leaveNow = false): Promise<void> {
  const leaving = client;
  client = undefined;
  if (leaving) {
    const stopped = leaving.stop('too slow for this job: watching');
    if (leaveNow) connection?.close('too slow for this job: watching');
    await stopped;
  }
  const waitMs = recheckDelayMs(watchingAttempts++);
  clearTimeout(recheckTimer);
  recheckTimer = setTimeout(() => {
    if (status.state === 'spectating') joinIfFastEnough().catch((error: Error) => spectate(`could not check this device's speed: ${error.message}`));
  }, waitMs);
  publish({ state: 'spectating', activity: 'none', message: `${reason} (checking again in ${Math.round(waitMs / 60_000)} min)` });
}

function onEvent(event: WorkerEvent): void {
  switch (event.type) {
    case 'connected':
      publish({ state: 'training', activity: 'waiting', jobId: event.jobId, workerId: event.workerId, message: '' });
      break;
    case 'disconnected':
      publish({ state: 'connecting', activity: 'none', message: `connection lost (${event.reason}); retrying in ${(event.retryInMs / 1000).toFixed(1)} s` });
      break;
    case 'update':
      recent.push({ samples: event.samples, ms: event.computeMs });
      if (recent.length > SPEED_WINDOW) recent.shift();
      publish({
        activity: 'sent',
        lastRound: event.round,
        losses: event.losses,
        samplesPerSecond: (recent.reduce((sum, entry) => sum + entry.samples, 0) / recent.reduce((sum, entry) => sum + entry.ms, 0)) * 1000,
      });
      break;
    case 'ack':
      publish({
        activity: 'waiting',
        updatesAccepted: status.updatesAccepted + 1,
        samplesContributed: status.samplesContributed + (recent.at(-1)?.samples ?? 0),
        computeMsContributed: status.computeMsContributed + (recent.at(-1)?.ms ?? 0),
        message: '',
      });
      if (status.updatesAccepted % SAMPLE_EVERY === 1) void sendSamples();
      break;
    case 'reject': {
      // After a fatal refusal the tab is out: an update failing as its session is torn down must not replace the reason.
      if (event.round === undefined || status.state === 'refused') break;
      const wasLate = isLate(event.code);
      publish({
        activity: wasLate ? 'late' : 'refused',
        updatesRejected: status.updatesRejected + 1,
        updatesLate: status.updatesLate + (wasLate ? 1 : 0),
        message: explainRefusal(event.code, event.message),
      });
      // A late update held its round to the deadline for nothing: the device is busier or slower than measured.
      if (wasLate && !insisted)
        void spectate(
          'your last update arrived after its round had closed: this device is busier or slower than measured, so it watches instead of holding rounds back',
          true,
        );
      break;
    }
    case 'idle':
      publish({ activity: 'idle', message: event.reason });
      break;
    case 'fatal':
      publish({ state: 'refused', activity: 'none', message: explainRefusal(event.error.code, event.error.message) });
      break;
  }
}

/** Draws a grid of samples from the given (or the client's current) generator for the page. */
async function sendSamples(trainer = client?.currentTrainer): Promise<void> {
  if (!trainer || !localSamples) return;
  const { images } = await trainer.sample(SAMPLE_COUNT, 1);
  const columns = 4;
  const [rows, cols, channels] = imageShape;
  const width = columns * cols;
  const height = Math.ceil(SAMPLE_COUNT / columns) * rows;
  const pixels = new Uint8ClampedArray(width * height * 4);
  const byte = (value: number) => Math.round(Math.min(1, Math.max(0, value)) * 255);
  for (let n = 0; n < SAMPLE_COUNT; n++) {
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        const source = ((n * rows + y) * cols + x) * channels;
        // Grey images repeat their one channel; RGB ones keep their colours.
        const [r, g, b] = channels === 1 ? [0, 0, 0] : [0, 1, 2];
        const target = ((Math.floor(n / columns) * rows + y) * width + (n % columns) * cols + x) * 4;
        pixels.set([byte(images[source + r]), byte(images[source + g]), byte(images[source + b]), 255], target);
      }
    }
  }
  post({ type: 'samples', width, height, pixels }, [pixels.buffer]);
}

function connect(): void {
  const start = started!;
  clearTimeout(recheckTimer);
  const openWebSocket = webSocketTransport(start.url, (url) => new WebSocket(url));
  const session: WorkerClient = new WorkerClient({
    jobId: start.jobId,
    kind: 'browser',
    backend: status.backend,
    device: status.device,
    name: start.name,
    token: start.token,
    workerId: status.workerId || undefined,
    resumeSecret,
    transport: (target) => (connection = openWebSocket(target)),
    loadBatch: async (dataset, indices, shardIds) => {
      publish({ activity: 'computing', share: indices.length });
      imageShape = dataset.imageShape;
      const authorization = sessionAuthorization(session.workerId!, session.dataToken!);
      if (dataset.shardHashes) {
        // A folder dataset: the assignment's shards, each fetched once by its hash (the cache checks it) and kept.
        shardCache ??= new ShardCache(async (hash) => {
          // The credential of the session in place when the shard is fetched (a reconnect brings a new one).
          const response = await fetch(`${started!.origin}/api/shards/${hash}`, {
            headers: { authorization: sessionAuthorization(client!.workerId!, client!.dataToken!) },
          });
          if (!response.ok) throw new Error(`shard ${hash}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
          return new Uint8Array(await response.arrayBuffer());
        });
        return shardCache.batch({ imageShape: dataset.imageShape, shardHashes: dataset.shardHashes }, indices, shardIds);
      }
      // The coordinator serves a session only the indices it was assigned, to the credential its welcome carried.
      const response = await fetch(`${start.origin}/api/datasets/${dataset.id}/examples?indices=${indices.join(',')}`, { headers: { authorization } });
      if (!response.ok) throw new Error(`examples: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
      const [height, width, channels] = dataset.imageShape;
      return decodeExamples(new Uint8Array(await response.arrayBuffer()), height * width * channels);
    },
    onEvent,
    // The load limit: at 50% the tab rests as long as it computed.
    throttleFactor: () => 1 / dutyCycle,
  });
  client = session;
  publish({ state: 'connecting', activity: 'none' });
  client.start();
}

async function gradients(request: Extract<PageToWorker, { type: 'gradients' }>): Promise<void> {
  try {
    await backendReady;
    const spec = getModel(request.modelId);
    const trainer = spec.createTrainer(spec.parseConfig(request.modelConfig));
    trainer.setWeights(request.weights);
    const { grads, losses } = await trainer.lossAndGrads(request.batch, request.noise);
    trainer.dispose();
    post({ type: 'gradients', requestId: request.requestId, grads, losses });
  } catch (error) {
    post({ type: 'gradients', requestId: request.requestId, error: (error as Error).message });
  }
}

scope.onmessage = async (event: MessageEvent<PageToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case 'start':
      started = message;
      insisted = Boolean(message.backend);
      dutyCycle = message.dutyCycle;
      backendReady = prepareBackend(message.backend, message.origin);
      try {
        await backendReady;
        await joinIfFastEnough();
      } catch (error) {
        publish({ state: 'refused', activity: 'none', message: (error as Error).message });
      }
      return;
    case 'pause':
      // A paused tab leaves the job (the rounds stop counting on it) and comes back under the same id, with its secret.
      resumeSecret = client?.resumeSecret;
      await client?.stop('paused');
      client = undefined;
      publish({ state: 'paused', activity: 'none', message: 'paused' });
      return;
    case 'resume':
      if (!client && started && status.state === 'paused') connect();
      return;
    case 'joinAnyway':
      insisted = true;
      if (!client && started && status.state === 'spectating') connect();
      return;
    case 'dutyCycle':
      dutyCycle = Math.min(1, Math.max(0.05, message.value));
      return;
    case 'localSamples':
      localSamples = message.enabled;
      return;
    case 'stop':
      await client?.stop('tab closed');
      client = undefined;
      publish({ state: 'stopped', activity: 'none' });
      return;
    case 'gradients':
      await gradients(message);
      return;
  }
};
