import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openApiDocument } from '../coordinator/api/openapi.ts';
import { startCoordinator, type Coordinator } from '../coordinator/server.ts';
import { decodeExamples } from '../shared/data/examples-wire.ts';
import { decodeShard } from '../shared/data/shard-blobs.ts';
import { writeShapeFolder } from './fixtures/image-folder.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import { sessionAuthorization } from '../shared/protocol/session-auth.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { until } from './helpers/processes.ts';
import { RawWorker } from './helpers/raw-worker.ts';
import { pack, unpack } from '../shared/codec/packr.ts';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.ts';

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
  it('refuses to start a second coordinator on a port in use, naming the port, and leaves the first serving', async () => {
    const second = startCoordinator({ port: coordinator.port, host: '127.0.0.1', adminToken: ADMIN, job: { id: 'second', ...small } });
    await expect(second).rejects.toMatchObject({ code: ErrorCode.InvalidConfig, field: 'port', message: expect.stringMatching(/in use/) });
    expect((await get('/health')).status).toBe(200);
  });

  it('health, list and get; an unknown job or route is a typed 404', async () => {
    expect(await (await get('/health')).json()).toEqual({ ok: true, jobs: 1 });
    const list = await (await get('/api/jobs')).json();
    expect(list.jobs.map((job: { id: string }) => job.id)).toEqual(['default']);
    const job = await (await get('/api/jobs/default')).json();
    expect(job).toMatchObject({ id: 'default', status: 'waiting', round: 0, version: 0, workers: [], lastRound: null });
    expect(job.config.model).toEqual({ id: 'dcgan', config: { ...dcgan.defaults, width: 4, latentDim: 8 } });
    await expectError(await get('/api/jobs/nope'), 404, 'UNKNOWN_JOB', 'id');
    await expectError(await get('/api/nothing-here'), 404, 'INVALID_MESSAGE', 'path');
    const root = await get('/?token=t', { redirect: 'manual' });
    expect([root.status, root.headers.get('location')]).toEqual([302, '/dashboard?token=t']);
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

    // Nothing written yet: the job exists, its outputs do not (yet).
    await expectError(await get('/api/jobs/steered/checkpoint'), 404, 'NOT_READY', 'checkpoint');
    await expectError(await get('/api/jobs/steered/model/model.json'), 404, 'NOT_READY', 'model');
    await expectError(await get('/api/jobs/steered/samples/latest.png'), 404, 'NOT_READY', 'file');
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

  it('serves examples only to a connected worker session, and only the indices it was assigned', async () => {
    await post('/api/jobs', { id: 'fed', ...small, training: { batchSize: 8 } });
    const worker = new RawWorker(`${base.replace('http', 'ws')}/ws`);
    await worker.hello({ jobId: 'fed' });
    const welcome = await worker.next('welcome');
    const assign = await worker.next('assign');
    const examples = (indices: number[] | string, authorization?: string, dataset = 'mnist') =>
      get(
        `/api/datasets/${dataset}/examples?indices=${Array.isArray(indices) ? indices.join(',') : indices}`,
        authorization ? { headers: { authorization } } : {},
      );
    const mine = sessionAuthorization(welcome.workerId, welcome.dataToken);

    const served = await examples(assign.sampleIndices, mine);
    expect(served.status).toBe(200);
    expect(served.headers.get('cache-control')).toBe('private, no-store');
    const batch = decodeExamples(new Uint8Array(await served.arrayBuffer()), 28 * 28);
    expect(batch.count).toBe(assign.sampleIndices.length);
    expect(Array.from(batch.labels)).toEqual(assign.sampleIndices.map((index) => loadMnist().labels[index]));

    // Without the session's credential: refused before the indices are even read, and counted with the other refusals.
    const unauthorizedBefore = coordinator.hub.refusals.get(ErrorCode.Unauthorized) ?? 0;
    await expectError(await examples(assign.sampleIndices), 401, 'UNAUTHORIZED', 'authorization');
    expect(coordinator.hub.refusals.get(ErrorCode.Unauthorized)).toBe(unauthorizedBefore + 1);
    await expectError(await examples(assign.sampleIndices, `Bearer ${ADMIN}`), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await examples(assign.sampleIndices, sessionAuthorization(welcome.workerId, welcome.resumeSecret)), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await examples(assign.sampleIndices, sessionAuthorization('w1-00000000', welcome.dataToken)), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await examples('0,x', undefined), 401, 'UNAUTHORIZED', 'authorization');
    // With it: only what was assigned, one batch at most.
    const unassigned = Array.from({ length: 10_000 }, (_, index) => index).find((index) => !assign.sampleIndices.includes(index))!;
    await expectError(await examples([...assign.sampleIndices, unassigned], mine), 403, 'NOT_ASSIGNED', `indices[${assign.sampleIndices.length}]`);
    await expectError(
      await examples(
        Array.from({ length: 2000 }, (_, index) => index),
        mine,
      ),
      403,
      'NOT_ASSIGNED',
    );
    await expectError(await examples([assign.sampleIndices[0], 'x'].join(','), mine), 400, 'INVALID_MESSAGE', 'indices[1]');
    await expectError(await examples('10000', mine), 400, 'INVALID_MESSAGE', 'indices[0]');
    await expectError(await examples('1', mine, 'cifar'), 404, 'INVALID_CONFIG', 'id');

    // A session that has left fetches nothing more.
    worker.close();
    await worker.closed;
    await until(
      async () => (await examples(assign.sampleIndices, mine)).status,
      (status) => status === 401,
      5_000,
      'the departed session refused',
    );
  });

  it("serves a folder dataset's shards by content hash, immutable, only to a session of that job", async () => {
    // The coordinator keeps the shards it cuts in its cache folder: this test's, not the user's.
    const cacheBefore = process.env.TESSERA_CACHE;
    process.env.TESSERA_CACHE = join(outputDir, 'cache');
    const folder = writeShapeFolder(join(outputDir, 'shapes'), { perClass: 3, size: 8, seed: 2 });
    const created = await post('/api/jobs', { id: 'shapes', ...small, dataset: { id: 'images', path: folder, shape: [8, 8, 3], shards: 2 } });
    process.env.TESSERA_CACHE = cacheBefore;
    expect(created.status).toBe(201);
    const job = await (await get('/api/jobs/shapes')).json();
    expect(job.data).toEqual({ imageShape: [8, 8, 3], classes: 3, classNames: ['circle', 'square', 'triangle'] });

    const worker = new RawWorker(`${base.replace('http', 'ws')}/ws`);
    await worker.hello({ jobId: 'shapes' });
    const welcome = await worker.next('welcome');
    expect(welcome.dataset).toMatchObject({ id: 'images', imageShape: [8, 8, 3], classes: 3 });
    const hashes = welcome.dataset.shardHashes!;
    expect(hashes).toHaveLength(2);
    const shard = (hash: string, authorization?: string) => get(`/api/shards/${hash}`, authorization ? { headers: { authorization } } : {});
    const mine = sessionAuthorization(welcome.workerId, welcome.dataToken);

    const served = await shard(hashes[1], mine);
    expect(served.status).toBe(200);
    expect(served.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    const decoded = await decodeShard(new Uint8Array(await served.arrayBuffer()), hashes[1], 8 * 8 * 3);
    expect(decoded.indices.length).toBe(4);
    await expectError(await shard(hashes[1]), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await shard('0'.repeat(64), mine), 404, 'NOT_ASSIGNED', 'hash');
    // A session of another job has no business with these shards.
    const other = new RawWorker(`${base.replace('http', 'ws')}/ws`);
    await other.hello({ jobId: 'default' });
    const otherWelcome = await other.next('welcome');
    expect(otherWelcome.dataset).toEqual({ id: 'mnist', imageShape: [28, 28, 1], classes: 10 });
    await expectError(await shard(hashes[0], sessionAuthorization(otherWelcome.workerId, otherWelcome.dataToken)), 404, 'NOT_ASSIGNED', 'hash');
    for (const raw of [worker, other]) {
      raw.close();
      await raw.closed;
    }
  });

  it('releases and bans a worker (admin only): a banned worker is disconnected and its id refused at hello', async () => {
    const join = async (workerId?: string, resumeSecret?: string) => {
      const socket = new WebSocket(`${base.replace('http', 'ws')}/ws`);
      const received: Record<string, unknown>[] = [];
      socket.binaryType = 'arraybuffer';
      socket.on('message', (data) => received.push(unpack(new Uint8Array(data as ArrayBuffer)) as Record<string, unknown>));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      await new Promise((resolve) => socket.on('open', resolve));
      socket.send(
        pack({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test', ...(workerId ? { workerId, resumeSecret } : {}) }),
      );
      await until(() => received.find((message) => message.type === 'welcome' || message.type === 'error'), Boolean, 10_000, 'welcome or error');
      return { socket, received, closed };
    };
    const worker = await join();
    const welcome = worker.received.find((message) => message.type === 'welcome')!;
    const id = welcome.workerId as string;
    const secret = welcome.resumeSecret as string;
    const path = (action: string, workerId = id) => `/api/jobs/default/workers/${workerId}/${action}`;
    await expectError(await post(path('ban'), undefined, null), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await post(path('ban', 'nobody')), 404, 'UNKNOWN_WORKER', 'workerId');
    await expectError(await post('/api/jobs/nope/workers/x/release'), 404, 'UNKNOWN_JOB', 'id');
    expect(await (await post(path('ban'))).json()).toMatchObject({ id, banned: true, quarantined: true, trust: 0 });
    await worker.closed;
    expect(worker.received.at(-1)).toMatchObject({ type: 'error', code: 'UNAUTHORIZED', field: 'workerId' });
    const again = await join(id, secret);
    expect(again.received[0]).toMatchObject({ type: 'error', code: 'UNAUTHORIZED', field: 'workerId' });
    expect(await (await post(path('release'))).json()).toMatchObject({ id, banned: false, quarantined: false, trust: 1 });
    const back = await join(id, secret);
    expect(back.received[0]).toMatchObject({ type: 'welcome', workerId: id });
    const job = await (await get('/api/jobs/default')).json();
    expect(job.workers.find((row: { id: string }) => row.id === id)).toMatchObject({ trust: 1, quarantined: false, banned: false });
    back.socket.close();
    await back.closed;
  });

  it('describes itself in OpenAPI, and every documented route exists', async () => {
    const document = await (await get('/api/openapi.json')).json();
    expect(document.openapi).toBe('3.1.0');
    const samplePaths: Record<string, string> = { '{id}': 'default', '{file}': 'latest.png', '{tokenId}': 'none' };
    let checked = 0;
    for (const [path, methods] of Object.entries(openApiDocument.paths)) {
      const concrete = path.replace(/\{(\w+)\}/g, (token) => samplePaths[token] ?? 'mnist') + (path.includes('examples') ? '?indices=1' : '');
      for (const method of Object.keys(methods)) {
        // /events streams; it is checked above. Admin actions go without a token: the route answers 401, and nothing changes.
        if (path.includes('/events')) continue;
        const body = await (await fetch(`${base}${concrete}`, { method: method.toUpperCase() })).text();
        // Whatever the answer (200, 401, or 404 for an output not written yet), it comes from the route, not from "no route".
        expect(body, `${method} ${concrete}`).not.toMatch(/no route/);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(18);
  });
});

describe('join tokens', () => {
  const wsUrl = () => `${base.replace('http', 'ws')}/ws`;
  const del = (path: string, token: string | null = ADMIN) =>
    fetch(`${base}${path}`, { method: 'DELETE', headers: token ? { authorization: `Bearer ${token}` } : {} });

  /** Says hello with a join token as the worker client does: a token seen first is checked, then the worker is asked again. */
  async function joinWith(token: string, fields: Record<string, unknown> = {}): Promise<RawWorker> {
    const worker = new RawWorker(wsUrl());
    await worker.hello({ token, ...fields });
    const first = await Promise.race([worker.next('reject'), worker.next('welcome'), worker.next('error')]);
    if (first.type === 'reject') {
      expect(first).toMatchObject({ code: 'NOT_REGISTERED', field: 'token' });
      await worker.hello({ token, ...fields });
    }
    return worker;
  }

  it('issues, lists and revokes join tokens; admin only, the admin token in the header only', async () => {
    await post('/api/jobs', { id: 'public', ...small });
    await expectError(await post('/api/jobs/public/join-tokens', { ttlSeconds: 3600 }, null), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await fetch(`${base}/api/jobs/public/join-tokens?token=${ADMIN}`, { method: 'POST' }), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await get(`/api/jobs/public/join-tokens?token=${ADMIN}`), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await post('/api/jobs/public/join-tokens', { ttlSeconds: 10 }), 400, 'INVALID_MESSAGE', 'ttlSeconds');
    await expectError(await post('/api/jobs/public/join-tokens', { ttl: 3600 }), 400, 'INVALID_MESSAGE', 'ttl');
    await expectError(await post('/api/jobs/public/join-tokens', '{nope'), 400, 'INVALID_MESSAGE', 'body');
    await expectError(await post('/api/jobs/ghost/join-tokens', {}), 404, 'UNKNOWN_JOB', 'id');

    const created = await post('/api/jobs/public/join-tokens', { ttlSeconds: 3600, label: 'lab' });
    expect(created.status).toBe(201);
    const issued = await created.json();
    expect(issued).toMatchObject({ id: expect.any(String), jobId: 'public', label: 'lab', revokedAt: null, expired: false, workers: 0 });
    expect(issued.url).toBe(`${base}/join?job=public&token=${issued.token}`);
    expect(Date.parse(issued.expiresAt) - Date.now()).toBeGreaterThan(3590_000);

    const listed = await (await get('/api/jobs/public/join-tokens', { headers: { authorization: `Bearer ${ADMIN}` } })).json();
    expect(listed.tokens).toEqual([expect.objectContaining({ id: issued.id, label: 'lab' })]);
    expect(JSON.stringify(listed)).not.toContain(issued.token);

    await expectError(await del(`/api/jobs/public/join-tokens/${issued.id}`, null), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await del('/api/jobs/public/join-tokens/no-such-token'), 404, 'INVALID_MESSAGE', 'tokenId');
    const revoked = await (await del(`/api/jobs/public/join-tokens/${issued.id}`)).json();
    expect(revoked).toMatchObject({ id: issued.id, revokedAt: expect.any(String), disconnected: 0 });
  });

  it('lets a worker in with a join token for its job; revoking it disconnects the worker and keeps it out', async () => {
    const issued = await (await post('/api/jobs/public/join-tokens', { label: 'revoke me' })).json();
    // The token names its job: a hello that names none joins it.
    const worker = await joinWith(issued.token);
    const welcome = await worker.next('welcome');
    expect(welcome.jobId).toBe('public');
    // Another job, or a token that was tampered with, is refused.
    const elsewhere = await joinWith(issued.token, { jobId: 'default' });
    expect(await elsewhere.next('error')).toMatchObject({ code: 'UNAUTHORIZED', field: 'token' });
    const forged = new RawWorker(wsUrl());
    await forged.hello({ token: `${issued.token.slice(0, -4)}AAAA` });
    expect(await forged.next('error')).toMatchObject({ code: 'UNAUTHORIZED', field: 'token' });
    await forged.closed;

    const listed = await (await get('/api/jobs/public/join-tokens', { headers: { authorization: `Bearer ${ADMIN}` } })).json();
    expect(listed.tokens.find((token: { id: string }) => token.id === issued.id).workers).toBe(1);
    const revoked = await (await del(`/api/jobs/public/join-tokens/${issued.id}`)).json();
    expect(revoked.disconnected).toBe(1);
    expect(await worker.next('error')).toMatchObject({ code: 'UNAUTHORIZED', field: 'token' });
    await worker.closed;
    // Neither a new hello nor a resume with the session's secret gets back in.
    for (const fields of [{}, { workerId: welcome.workerId, resumeSecret: welcome.resumeSecret }]) {
      const again = new RawWorker(wsUrl());
      await again.hello({ token: issued.token, ...fields });
      expect(await again.next('error')).toMatchObject({ code: 'UNAUTHORIZED', field: 'token' });
      await again.closed;
    }
  });
});

describe('job API with a read token', () => {
  let guarded: Coordinator;
  beforeAll(async () => {
    guarded = await startCoordinator({ port: 0, host: '127.0.0.1', adminToken: ADMIN, readToken: 'reader', job: { id: 'private', ...small } });
  });
  afterAll(async () => guarded?.close());

  it('refuses reading without a token, and accepts the read token (header or query) and the admin token (header only)', async () => {
    await expectError(await fetch(`${guarded.url}/api/jobs`), 401, 'UNAUTHORIZED', 'authorization');
    await expectError(await fetch(`${guarded.url}/api/jobs/private`, { headers: { authorization: 'Bearer nope' } }), 401, 'UNAUTHORIZED', 'authorization');
    expect((await fetch(`${guarded.url}/api/jobs`, { headers: { authorization: 'Bearer reader' } })).status).toBe(200);
    expect((await fetch(`${guarded.url}/api/jobs/private?token=reader`)).status).toBe(200);
    expect((await fetch(`${guarded.url}/api/jobs/private`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(200);
    // A URL lands in logs and Referer headers: the admin token is refused there, for reading and for actions.
    await expectError(await fetch(`${guarded.url}/api/jobs/private?token=${ADMIN}`), 401, 'UNAUTHORIZED', 'authorization');
    const inUrl = await fetch(`${guarded.url}/api/jobs/private/pause?token=${ADMIN}`, { method: 'POST' });
    expect((await inUrl.json()).error.message).toMatch(/Authorization header only/);
    // The read token does not grant admin actions.
    await expectError(
      await fetch(`${guarded.url}/api/jobs/private/pause`, { method: 'POST', headers: { authorization: 'Bearer reader' } }),
      401,
      'UNAUTHORIZED',
      'authorization',
    );
  });
});
