import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openApiDocument } from '../coordinator/api/openapi.ts';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { pack, unpack } from '../shared/codec/packr.ts';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.ts';
import { selectNodeBackend } from '../worker/backend.ts';
import { until } from './helpers/processes.ts';

/** The job API against a real coordinator on loopback: every route, good and bad cases. */

const outputDir = mkdtempSync(join(tmpdir(), 'tessera-api-'));
const ADMIN = 'admin-secret';
const small = { model: { config: { width: 4, latentDim: 8 } }, output: { dir: outputDir } };
let coordinator: Coordinator;
let base = '';

const get = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, init);
const post = (path: string, body?: unknown, token: string | null = ADMIN) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
async function expectError(response: Response, status: number, code: string, field?: string) {
  expect(response.status).toBe(status);
  const body = await response.json();
  expect(body.error.code).toBe(code);
  if (field !== undefined) expect(body.error.field).toBe(field);
}

beforeAll(async () => {
  await selectNodeBackend('wasm');
  coordinator = await startCoordinator({ port: 0, host: '127.0.0.1', adminToken: ADMIN, job: { id: 'default', ...small } });
  base = coordinator.url;
});
afterAll(async () => {
  await coordinator?.close();
  rmSync(outputDir, { recursive: true, force: true });
});

describe('job API', () => {
  it('health, list and get; an unknown job or route is a typed 404', async () => {
    expect(await (await get('/health')).json()).toEqual({ ok: true, jobs: 1 });
    const list = await (await get('/api/jobs')).json();
    expect(list.jobs.map((job: { id: string }) => job.id)).toEqual(['default']);
    const job = await (await get('/api/jobs/default')).json();
    expect(job).toMatchObject({ id: 'default', status: 'waiting', round: 0, version: 0, workers: [], lastRound: null });
    expect(job.config.model).toEqual({ id: 'dcgan', config: { width: 4, latentDim: 8, leak: 0.2 } });
    await expectError(await get('/api/jobs/nope'), 404, 'UNKNOWN_JOB', 'id');
    await expectError(await get('/api/nothing-here'), 404, 'INVALID_MESSAGE', 'path');
    const metrics = await get('/metrics');
    expect(metrics.headers.get('content-type')).toMatch(/text\/plain/);
    expect(await metrics.text()).toMatch(/tessera_job_status\{job_id="default",status="waiting"\} 1/);
  });

  it('creates a job from a config: admin token required, the field at fault named, duplicates refused', async () => {
    const config = { id: 'second', ...small, training: { batchSize: 8 } };
    await expectError(await post('/api/jobs', config, null), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await post('/api/jobs', config, 'wrong'), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await post('/api/jobs', '{not json'), 400, 'INVALID_CONFIG', 'body');
    await expectError(await post('/api/jobs', { id: 'x', training: { batchsize: 8 } }), 400, 'INVALID_CONFIG', 'training.batchsize');
    await expectError(await post('/api/jobs', { id: 'x', training: { batchSize: 0 } }), 400, 'INVALID_CONFIG', 'training.batchSize');
    await expectError(await post('/api/jobs', { id: 'x', model: { id: 'nope' } }), 400, 'UNKNOWN_MODEL', 'model.id');
    await expectError(await post('/api/jobs', { id: 'x', model: { config: { widht: 3 } } }), 400, 'INVALID_CONFIG', 'model.config.widht');
    const created = await post('/api/jobs', config);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id: 'second', status: 'waiting', config: { training: { batchSize: 8 } } });
    await expectError(await post('/api/jobs', config), 409, 'INVALID_CONFIG', 'id');
    expect((await (await get('/api/jobs')).json()).jobs).toHaveLength(2);
  });

  it('pauses, resumes and stops a job; stopping writes the final checkpoint, samples and model', async () => {
    await post('/api/jobs', { id: 'steered', ...small });
    await expectError(await post('/api/jobs/steered/pause', undefined, null), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await post('/api/jobs/ghost/pause'), 404, 'UNKNOWN_JOB', 'id');
    expect((await (await post('/api/jobs/steered/pause')).json()).status).toBe('paused');
    expect((await (await post('/api/jobs/steered/resume')).json()).status).toBe('waiting');

    // Nothing written yet.
    await expectError(await get('/api/jobs/steered/checkpoint'), 404, 'BAD_CHECKPOINT', 'checkpoint');
    await expectError(await get('/api/jobs/steered/model/model.json'), 404, 'UNKNOWN_JOB', 'model');
    await expectError(await get('/api/jobs/steered/samples/latest.png'), 404, 'UNKNOWN_JOB', 'file');
    expect(await (await get('/api/jobs/steered/samples')).json()).toEqual({ samples: [] });

    expect((await (await post('/api/jobs/steered/stop')).json()).status).toBe('stopped');
    await expectError(await post('/api/jobs/steered/resume'), 409, 'JOB_NOT_RUNNING', 'status');
    const checkpoint = await get('/api/jobs/steered/checkpoint');
    expect(checkpoint.status).toBe(200);
    expect(checkpoint.headers.get('content-disposition')).toMatch(/steered-checkpoint\.msgpack/);
    const model = await (await get('/api/jobs/steered/model/model.json')).json();
    expect(model.format).toBe('layers-model');
    expect((await get('/api/jobs/steered/model/weights.bin')).status).toBe(200);
    await expectError(await get('/api/jobs/steered/model/other.bin'), 404, 'UNKNOWN_JOB', 'file');
    const latest = await get('/api/jobs/steered/samples/latest.png');
    expect(latest.headers.get('content-type')).toBe('image/png');
    const samples = (await (await get('/api/jobs/steered/samples')).json()).samples;
    expect(samples).toEqual([{ round: 0, url: '/api/jobs/steered/samples/round-000000.png' }]);
    expect((await get(samples[0].url)).status).toBe(200);
    await expectError(await get('/api/jobs/steered/samples/..%2Fcheckpoint.msgpack'), 404, 'UNKNOWN_JOB', 'file');
  });

  it('serves the current weights, the recent rounds and a live event stream', async () => {
    const weights = await get('/api/jobs/default/weights');
    expect(weights.status).toBe(200);
    expect(weights.headers.get('x-tessera-version')).toBe('0');
    expect(weights.headers.get('x-tessera-hash')).toMatch(/^[0-9a-f]{64}$/);
    expect((await weights.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    expect(await (await get('/api/jobs/default/rounds?limit=5')).json()).toEqual({ rounds: [] });
    await expectError(await get('/api/jobs/ghost/rounds'), 404, 'UNKNOWN_JOB', 'id');

    const controller = new AbortController();
    const events = await get('/api/jobs/default/events', { signal: controller.signal });
    expect(events.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = events.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    expect(text).toMatch(/^event: snapshot\ndata: /);
    const snapshot = JSON.parse(text.split('\n')[1].slice('data: '.length));
    expect(snapshot.job.id).toBe('default');
    await expectError(await get('/api/jobs/ghost/events'), 404, 'UNKNOWN_JOB', 'id');
  });

  it('serves examples by index and refuses bad indices with the field named', async () => {
    expect((await get('/api/datasets/mnist/examples?indices=0,1,9999')).status).toBe(200);
    await expectError(await get('/api/datasets/mnist/examples?indices=0,x'), 400, 'INVALID_MESSAGE', 'indices[1]');
    await expectError(await get('/api/datasets/mnist/examples?indices=10000'), 400, 'INVALID_MESSAGE', 'indices[0]');
    await expectError(await get('/api/datasets/cifar/examples?indices=1'), 404, 'INVALID_CONFIG', 'id');
  });

  it('releases and bans a worker (admin only): a banned worker is disconnected and its id refused at hello', async () => {
    const join = async (workerId?: string) => {
      const socket = new WebSocket(`${base.replace('http', 'ws')}/ws`);
      const received: Record<string, unknown>[] = [];
      socket.binaryType = 'arraybuffer';
      socket.on('message', (data) => received.push(unpack(new Uint8Array(data as ArrayBuffer)) as Record<string, unknown>));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      await new Promise((resolve) => socket.on('open', resolve));
      socket.send(pack({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test', ...(workerId ? { workerId } : {}) }));
      await until(() => received.find((message) => message.type === 'welcome' || message.type === 'error'), Boolean, 10_000, 'welcome or error');
      return { socket, received, closed };
    };
    const worker = await join();
    const id = worker.received.find((message) => message.type === 'welcome')!.workerId as string;
    const path = (action: string, workerId = id) => `/api/jobs/default/workers/${workerId}/${action}`;
    await expectError(await post(path('ban'), undefined, null), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await post(path('ban', 'nobody')), 404, 'UNKNOWN_WORKER', 'workerId');
    await expectError(await post('/api/jobs/nope/workers/x/release'), 404, 'UNKNOWN_JOB', 'id');
    expect(await (await post(path('ban'))).json()).toMatchObject({ id, banned: true, quarantined: true, trust: 0 });
    await worker.closed;
    expect(worker.received.at(-1)).toMatchObject({ type: 'error', code: 'UNAUTHORIZED', field: 'workerId' });
    const again = await join(id);
    expect(again.received[0]).toMatchObject({ type: 'error', code: 'UNAUTHORIZED', field: 'workerId' });
    expect(await (await post(path('release'))).json()).toMatchObject({ id, banned: false, quarantined: false, trust: 1 });
    const back = await join(id);
    expect(back.received[0]).toMatchObject({ type: 'welcome', workerId: id });
    const job = await (await get('/api/jobs/default')).json();
    expect(job.workers.find((row: { id: string }) => row.id === id)).toMatchObject({ trust: 1, quarantined: false, banned: false });
    back.socket.close();
    await back.closed;
  });

  it('describes itself in OpenAPI, and every documented GET route exists', async () => {
    const document = await (await get('/api/openapi.json')).json();
    expect(document.openapi).toBe('3.1.0');
    const samplePaths: Record<string, string> = { '{id}': 'default', '{file}': 'latest.png' };
    for (const [path, methods] of Object.entries(openApiDocument.paths)) {
      // /events streams; it is checked above.
      if (!('get' in methods) || path.includes('/events')) continue;
      const concrete = path.replace(/\{(\w+)\}/g, (token) => samplePaths[token] ?? 'mnist') + (path.includes('examples') ? '?indices=1' : '');
      const body = await (await get(concrete)).text();
      // Whatever the answer (200, or 404 for an output not written yet), it comes from the route, not from "no route".
      expect(body, concrete).not.toMatch(/no route/);
    }
  });
});

describe('job API with a read token', () => {
  let guarded: Coordinator;
  beforeAll(async () => {
    guarded = await startCoordinator({ port: 0, host: '127.0.0.1', adminToken: ADMIN, readToken: 'reader', job: { id: 'private', ...small } });
  });
  afterAll(async () => guarded?.close());

  it('refuses reading without a token, and accepts the read token (header or query) and the admin token', async () => {
    await expectError(await fetch(`${guarded.url}/api/jobs`), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await fetch(`${guarded.url}/api/jobs/private`, { headers: { authorization: 'Bearer nope' } }), 401, 'UNAUTHORIZED', 'authorization');
    expect((await fetch(`${guarded.url}/api/jobs`, { headers: { authorization: 'Bearer reader' } })).status).toBe(200);
    expect((await fetch(`${guarded.url}/api/jobs/private?token=reader`)).status).toBe(200);
    expect((await fetch(`${guarded.url}/api/jobs/private`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(200);
    // The read token does not grant admin actions.
    await expectError(await fetch(`${guarded.url}/api/jobs/private/pause`, { method: 'POST', headers: { authorization: 'Bearer reader' } }), 401, 'UNAUTHORIZED', 'authorization');
  });
});
