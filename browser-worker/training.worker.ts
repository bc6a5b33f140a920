/// <reference lib="webworker" />
import { decodeExamples } from '../shared/data/examples-wire.ts';
import { getModel } from '../shared/models/registry.ts';
import { selectBackend } from '../shared/tfjs/backends.ts';
import { sessionAuthorization } from '../shared/protocol/session-auth.ts';
import { WorkerClient, type SocketLike, type WorkerEvent } from '../shared/worker/client.ts';
import { BROWSER_BACKENDS, browserCandidates, describeDevice, type BrowserBackend } from './backends.ts';
import type { PageToWorker, TabStatus, WorkerToPage } from './messages.ts';

/**
 * The tab's trainer, in a Web Worker so the page stays responsive: the same
 * WorkerClient the Node worker runs, over the browser's own WebSocket, with
 * examples fetched from the coordinator.
 */

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (message: WorkerToPage, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

/** Grid of samples shown on the page, refreshed every few accepted updates. */
const SAMPLE_EVERY = 3;
const SAMPLE_COUNT = 16;
/** Speed over the last few updates: recent enough to show a throttled tab slowing down. */
const SPEED_WINDOW = 5;

let client: WorkerClient | undefined;
/** The session's secret, kept across a pause so the tab resumes under its id (not shown to the page). */
let resumeSecret: string | undefined;
let started: Extract<PageToWorker, { type: 'start' }> | undefined;
let dutyCycle = 1;
let backendReady: Promise<void> | undefined;
const recent: { samples: number; ms: number }[] = [];
const status: TabStatus = {
  state: 'starting', backend: '', device: '', jobId: '', workerId: '', samplesPerSecond: 0,
  updatesAccepted: 0, updatesRejected: 0, samplesContributed: 0, lastRound: -1, losses: {}, message: '',
};

function publish(changes: Partial<TabStatus>): void {
  Object.assign(status, changes);
  post({ type: 'status', status: { ...status } });
}

async function prepareBackend(forced: string | undefined, origin: string): Promise<void> {
  const candidates = browserCandidates(`${origin}/static/wasm/`);
  if (forced && !(BROWSER_BACKENDS as readonly string[]).includes(forced)) throw new Error(`unknown backend ${forced}; known: ${BROWSER_BACKENDS.join(', ')}`);
  const order = forced ? [candidates[forced as BrowserBackend]] : BROWSER_BACKENDS.map((name) => candidates[name]);
  const choice = await selectBackend(order);
  publish({ backend: choice.name, device: await describeDevice(choice.name), message: choice.skipped.map((skip) => `${skip.name}: ${skip.reason}`).join('; ') });
}

function onEvent(event: WorkerEvent): void {
  switch (event.type) {
    case 'connected':
      publish({ state: 'training', jobId: event.jobId, workerId: event.workerId, message: '' });
      break;
    case 'disconnected':
      publish({ state: 'connecting', message: `connection lost (${event.reason}); retrying in ${(event.retryInMs / 1000).toFixed(1)} s` });
      break;
    case 'update':
      recent.push({ samples: event.samples, ms: event.computeMs });
      if (recent.length > SPEED_WINDOW) recent.shift();
      publish({
        lastRound: event.round,
        losses: event.losses,
        samplesPerSecond: (recent.reduce((sum, entry) => sum + entry.samples, 0) / recent.reduce((sum, entry) => sum + entry.ms, 0)) * 1000,
      });
      break;
    case 'ack':
      publish({ updatesAccepted: status.updatesAccepted + 1, samplesContributed: status.samplesContributed + (recent.at(-1)?.samples ?? 0) });
      if (status.updatesAccepted % SAMPLE_EVERY === 1) void sendSamples();
      break;
    case 'reject':
      if (event.round !== undefined) publish({ updatesRejected: status.updatesRejected + 1, message: `rejected: ${event.code} ${event.message}` });
      break;
    case 'idle':
      publish({ message: event.reason });
      break;
    case 'fatal':
      publish({ state: 'refused', message: `${event.error.code}: ${event.error.message}` });
      break;
  }
}

/** Draws a grid of samples from the current generator for the page. */
async function sendSamples(): Promise<void> {
  const trainer = client?.currentTrainer;
  if (!trainer) return;
  const { images } = await trainer.sample(SAMPLE_COUNT, 1);
  const columns = 4;
  const size = 28;
  const width = columns * size;
  const height = Math.ceil(SAMPLE_COUNT / columns) * size;
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let n = 0; n < SAMPLE_COUNT; n++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const value = Math.round(Math.min(1, Math.max(0, images[(n * size + y) * size + x])) * 255);
        const target = (((Math.floor(n / columns) * size + y) * width) + (n % columns) * size + x) * 4;
        pixels.set([value, value, value, 255], target);
      }
    }
  }
  post({ type: 'samples', width, height, pixels }, [pixels.buffer]);
}

function connect(): void {
  const start = started!;
  const session: WorkerClient = new WorkerClient({
    url: start.url,
    jobId: start.jobId,
    kind: 'browser',
    backend: status.backend,
    device: status.device,
    name: start.name,
    token: start.token,
    workerId: status.workerId || undefined,
    resumeSecret,
    createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    loadBatch: async (datasetId, indices) => {
      // The coordinator serves a session only the indices it was assigned, to the credential its welcome carried.
      const response = await fetch(`${start.origin}/api/datasets/${datasetId}/examples?indices=${indices.join(',')}`, {
        headers: { authorization: sessionAuthorization(session.workerId!, session.dataToken!) },
      });
      if (!response.ok) throw new Error(`examples: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
      return decodeExamples(new Uint8Array(await response.arrayBuffer()), 28 * 28);
    },
    onEvent,
    // The load limit: at 50% the tab rests as long as it computed.
    throttleFactor: () => 1 / dutyCycle,
  });
  client = session;
  publish({ state: 'connecting' });
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
      dutyCycle = message.dutyCycle;
      backendReady = prepareBackend(message.backend, message.origin);
      try {
        await backendReady;
      } catch (error) {
        publish({ state: 'refused', message: (error as Error).message });
        return;
      }
      connect();
      return;
    case 'pause':
      // A paused tab leaves the job (the rounds stop counting on it) and comes back under the same id, with its secret.
      resumeSecret = client?.resumeSecret;
      await client?.stop('paused');
      client = undefined;
      publish({ state: 'paused', message: 'paused' });
      return;
    case 'resume':
      if (!client && started && status.state === 'paused') connect();
      return;
    case 'dutyCycle':
      dutyCycle = Math.min(1, Math.max(0.05, message.value));
      return;
    case 'stop':
      await client?.stop('tab closed');
      client = undefined;
      publish({ state: 'stopped' });
      return;
    case 'gradients':
      await gradients(message);
      return;
  }
};

