import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { getCodec } from '../shared/codec/index.ts';
import { tensorsToArrays } from '../shared/codec/named.ts';
import { pack } from '../shared/codec/packr.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { PROTOCOL_VERSION, type Assign } from '../shared/protocol/messages.ts';
import { parseJobConfig } from './config.ts';
import { Hub } from './hub.ts';
import { Job } from './job/job.ts';
import { JobRunner } from './job/runner.ts';
import { FakeChannel, fakeTrainer, shapes, updateFor } from './test-fixtures.ts';

const hello = { type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test' };

describe('Hub', () => {
  let dir: string;
  let runner: JobRunner;
  let hub: Hub;

  function makeHub(options: { workerToken?: string } = {}): Hub {
    const config = parseJobConfig({
      id: 'unit',
      training: { batchSize: 4, minWorkers: 1 },
      dataset: { shards: 4 },
      // Outputs only far in the future; the round log may land in the temp dir.
      output: { dir, checkpointEvery: 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000 },
    });
    const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([-1, -2, -3, -4]) };
    const job = new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
    runner = new JobRunner(job, fakeTrainer());
    hub = new Hub({ defaultJobId: 'unit', heartbeatMs: 5000, ...options });
    hub.addRunner(runner);
    return hub;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-hub-'));
    makeHub();
  });

  afterEach(async () => {
    await runner.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const send = (channel: FakeChannel, message: unknown) => hub.onMessage(channel, pack(message).slice());

  /** Says hello and waits for the first assignment (the round opens asynchronously). */
  async function join(channel: FakeChannel, extra: Record<string, unknown> = {}): Promise<Assign> {
    const before = channel.ofType('assign').length;
    send(channel, { ...hello, ...extra });
    await vi.waitFor(() => expect(channel.ofType('assign').length).toBeGreaterThan(before));
    return channel.ofType('assign').at(-1)!;
  }

  it('refuses undecodable bytes with DecodeFailed and keeps the connection', () => {
    const channel = new FakeChannel();
    for (const bytes of [new Uint8Array([0x93, 1]), new Uint8Array(0), pack(hello).slice(0, 5), new TextEncoder().encode('{"type":"hello"}')]) {
      hub.onMessage(channel, bytes);
      expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.DecodeFailed });
    }
    expect(channel.closed).toEqual([]);
    expect(hub.refusals.get(ErrorCode.DecodeFailed)).toBe(4);
  });

  it('refuses work before hello with NotRegistered', () => {
    const channel = new FakeChannel();
    send(channel, { type: 'fetchWeights', hash: 'abc' });
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.NotRegistered, field: 'type' });
    send(channel, { type: 'heartbeat' });
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.NotRegistered });
    send(channel, {
      type: 'update',
      jobId: 'unit',
      round: 0,
      version: 0,
      weightsHash: 'h',
      samples: 4,
      codec: 'f32',
      tensors: new Uint8Array(4),
      losses: {},
      timing: { computeMs: 1, fetchMs: 1 },
    });
    // An update's reject names its round, so the worker knows which work was refused.
    expect(channel.last()).toEqual(expect.objectContaining({ type: 'reject', code: ErrorCode.NotRegistered, round: 0 }));
    expect(channel.closed).toEqual([]);
    expect(hub.sessions.size).toBe(0);
  });

  it('refuses an unknown message type with UnknownMessageType', () => {
    const channel = new FakeChannel();
    send(channel, { type: 'gossip' });
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.UnknownMessageType, field: 'type' });
    send(channel, [1, 2]);
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.InvalidMessage });
    expect(channel.closed).toEqual([]);
  });

  it('refuses a hello with another protocol version, leaving the connection open', () => {
    const channel = new FakeChannel();
    send(channel, { ...hello, protocol: PROTOCOL_VERSION + 1 });
    expect(channel.sent).toEqual([expect.objectContaining({ type: 'reject', code: ErrorCode.ProtocolMismatch, field: 'protocol' })]);
    expect(channel.closed).toEqual([]);
    expect(hub.sessions.size).toBe(0);
  });

  it('answers a hello for an unknown job with an error, then closes', () => {
    const channel = new FakeChannel();
    send(channel, { ...hello, jobId: 'other' });
    expect(channel.sent).toEqual([expect.objectContaining({ type: 'error', code: ErrorCode.UnknownJob, field: 'jobId' })]);
    expect(channel.closed).toEqual([ErrorCode.UnknownJob]);
    expect(hub.sessions.size).toBe(0);
  });

  it('refuses a hello for another job than the one the connection’s carrier is bound to (NATS subjects), naming jobId', async () => {
    const bound = new FakeChannel();
    bound.jobId = 'other';
    send(bound, hello);
    expect(bound.sent).toEqual([expect.objectContaining({ type: 'error', code: ErrorCode.InvalidMessage, field: 'jobId' })]);
    expect(hub.sessions.size).toBe(0);
    const own = new FakeChannel();
    own.jobId = 'unit';
    await join(own);
    expect(hub.sessions.size).toBe(1);
  });

  it('answers a missing or wrong token with Unauthorized, then closes; the right one joins', async () => {
    makeHub({ workerToken: 'open sesame' });
    for (const token of [undefined, 'wrong']) {
      const channel = new FakeChannel();
      send(channel, token === undefined ? hello : { ...hello, token });
      expect(channel.sent).toEqual([expect.objectContaining({ type: 'error', code: ErrorCode.Unauthorized, field: 'token' })]);
      expect(channel.closed).toEqual([ErrorCode.Unauthorized]);
    }
    expect(hub.sessions.size).toBe(0);
    expect(runner.workers).toEqual([]);
    const channel = new FakeChannel();
    await join(channel, { token: 'open sesame' });
    expect(channel.sent[0]).toMatchObject({ type: 'welcome' });
  });

  it('welcomes a good hello, then (one worker needed) assigns it work', async () => {
    const channel = new FakeChannel();
    const joined = vi.fn();
    hub.on('joined', joined);
    const assign = await join(channel, { name: 'laptop' });
    const [welcome, ...rest] = channel.sent;
    expect(welcome).toEqual({
      type: 'welcome',
      workerId: expect.any(String),
      jobId: 'unit',
      model: { id: 'dcgan', config: runner.job.config.model.config },
      dataset: { id: 'mnist', imageShape: [28, 28, 1], classes: 10 },
      heartbeatMs: 5000,
      resumeSecret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      dataToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    // The round's weights go out first: the worker computes on the assignment's arrival, without asking.
    expect(rest).toEqual([expect.objectContaining({ type: 'weights', hash: assign.weightsHash }), assign]);
    expect(assign).toMatchObject({ type: 'assign', jobId: 'unit', round: 0, version: 0, codec: 'f32' });
    expect(assign.sampleIndices).toHaveLength(4);
    expect(joined).toHaveBeenCalledOnce();
    const session = hub.sessions.get((welcome as { workerId: string }).workerId)!;
    expect(session).toMatchObject({ jobId: 'unit', kind: 'node', backend: 'wasm', name: 'laptop', channel });
    expect(runner.status).toBe('running');
  });

  it('sends the assigned weights by hash, and refuses an unknown hash with UnknownWeights', async () => {
    const channel = new FakeChannel();
    const assign = await join(channel);
    send(channel, { type: 'fetchWeights', hash: assign.weightsHash });
    const weights = channel.last();
    expect(weights).toMatchObject({ type: 'weights', hash: assign.weightsHash, version: 0, codec: 'f32' });
    if (weights?.type !== 'weights') throw new Error('expected weights');
    const decoded = tensorsToArrays(getCodec('f32').decode(weights.tensors), shapes);
    expect(decoded).toEqual(runner.job.state.weights);

    send(channel, { type: 'fetchWeights', hash: '0'.repeat(64) });
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.UnknownWeights, field: 'hash' });
    expect(channel.closed).toEqual([]);
  });

  it('pushes each new version before the assignment that needs it, once per connection, and never over a broadcasting transport', async () => {
    const pushed = vi.fn();
    hub.on('bytesOut', pushed);
    const channel = new FakeChannel();
    const first = await join(channel);
    const weightsOf = (hash: string) => channel.ofType('weights').filter((weights) => weights.hash === hash);
    expect(weightsOf(first.weightsHash)).toHaveLength(1);
    expect(pushed).toHaveBeenCalledWith('unit', expect.any(Number), 'weights-push', 'fake');
    // The round applies: the next one trains a new version, pushed again before its assignment.
    send(channel, updateFor(first));
    await vi.waitFor(() => expect(channel.ofType('assign').length).toBe(2));
    const second = channel.ofType('assign')[1];
    expect(second.weightsHash).not.toBe(first.weightsHash);
    const sent = channel.sent.map((message) => message.type);
    expect(sent.slice(-2)).toEqual(['weights', 'assign']);
    expect(weightsOf(second.weightsHash)).toHaveLength(1);
    // A connection whose transport broadcasts each version (NATS) is sent assignments only.
    const broadcast = Object.assign(new FakeChannel(), { broadcastsWeights: true });
    send(broadcast, hello);
    await vi.waitFor(() => expect(hub.sessions.size).toBe(2));
    send(channel, updateFor(second));
    await vi.waitFor(() => expect(broadcast.ofType('assign')).toHaveLength(1));
    expect(broadcast.ofType('weights')).toEqual([]);
    expect(weightsOf(broadcast.ofType('assign')[0].weightsHash)).toHaveLength(1);
  });

  it('counts refusals by code and emits each one', async () => {
    const refused = vi.fn();
    hub.on('refused', refused);
    const stranger = new FakeChannel();
    hub.onMessage(stranger, new Uint8Array([0xde]));
    send(stranger, { type: 'heartbeat' });
    send(stranger, { type: 'heartbeat' });
    send(stranger, { type: 'nope' });
    send(stranger, { ...hello, jobId: 'missing' });
    const worker = new FakeChannel();
    await join(worker);
    send(worker, { type: 'fetchWeights', hash: 'ff' });
    send(worker, hello);
    expect(Object.fromEntries(hub.refusals)).toEqual({
      [ErrorCode.DecodeFailed]: 1,
      [ErrorCode.NotRegistered]: 2,
      [ErrorCode.UnknownMessageType]: 1,
      [ErrorCode.UnknownJob]: 1,
      [ErrorCode.UnknownWeights]: 1,
      // A second hello on one connection.
      [ErrorCode.InvalidMessage]: 1,
    });
    expect(refused).toHaveBeenCalledTimes(7);
    expect(refused).toHaveBeenCalledWith(ErrorCode.UnknownWeights, 'hash', worker);
  });

  it('hands updates to the job: ack for a good one, reject with the round for a bad one', async () => {
    const channel = new FakeChannel();
    const assign = await join(channel);
    send(channel, updateFor(assign, { version: 5 }));
    expect(channel.answer()).toMatchObject({ type: 'reject', round: 0, code: ErrorCode.StaleVersion, field: 'version' });
    // The rejected update was the only worker's share: the round closed without it, and the next one trains the same version.
    await vi.waitFor(() => expect(channel.ofType('assign')).toHaveLength(2));
    const again = channel.ofType('assign')[1];
    expect(again).toMatchObject({ round: 1, version: 0 });
    send(channel, updateFor(again));
    expect(channel.sent).toContainEqual({ type: 'ack', round: 1 });
    await vi.waitFor(() => expect(channel.ofType('assign')).toHaveLength(3));
    expect(channel.ofType('assign')[2]).toMatchObject({ round: 2, version: 1 });
    const session = [...hub.sessions.values()][0];
    expect(session).toMatchObject({ updatesAccepted: 1, updatesRejected: 1, samplesContributed: 4 });
  });

  it('keeps a reconnecting worker’s session and counters', async () => {
    const first = new FakeChannel();
    const assign = await join(first);
    const workerId = (first.sent[0] as { workerId: string }).workerId;
    send(first, updateFor(assign));
    await vi.waitFor(() => expect(first.ofType('assign')).toHaveLength(2));
    const session = hub.sessions.get(workerId)!;
    expect(session.updatesAccepted).toBe(1);

    const left = vi.fn();
    hub.on('left', left);
    hub.onClose(first, 'network down');
    expect(left).toHaveBeenCalledWith(session, 'network down');
    expect(session.channel).toBeUndefined();
    expect(runner.workers).toEqual([]);

    const second = new FakeChannel();
    const { resumeSecret } = first.ofType('welcome')[0];
    const reassigned = await join(second, { workerId, resumeSecret });
    expect(second.sent[0]).toMatchObject({ type: 'welcome', workerId });
    expect(hub.sessions.get(workerId)).toBe(session);
    expect(session).toMatchObject({ channel: second, updatesAccepted: 1, samplesContributed: 4 });
    // Round 1 closed without the departed worker; round 2 trains version 1.
    expect(reassigned).toMatchObject({ round: 2, version: 1 });
    // The old connection no longer speaks for the worker.
    send(first, { type: 'heartbeat' });
    expect(first.last()).toMatchObject({ type: 'reject', code: ErrorCode.NotRegistered });
  });

  it('a second connection naming a live worker id without its secret is refused; the victim keeps its connection', async () => {
    const first = new FakeChannel();
    await join(first);
    const workerId = first.workerId();
    for (const resumeSecret of [undefined, 'x'.repeat(43)]) {
      const intruder = new FakeChannel();
      send(intruder, { ...hello, workerId, ...(resumeSecret ? { resumeSecret } : {}) });
      expect(intruder.sent).toEqual([expect.objectContaining({ type: 'error', code: ErrorCode.Unauthorized, field: 'resumeSecret' })]);
      expect(intruder.closed).toEqual([ErrorCode.Unauthorized]);
    }
    expect(first.closed).toEqual([]);
    expect(hub.sessions.get(workerId)!.channel).toBe(first);
  });

  it('a second connection with the same worker id and its secret replaces the first', async () => {
    const first = new FakeChannel();
    await join(first);
    const workerId = first.workerId();
    const second = new FakeChannel();
    send(second, { ...hello, workerId, resumeSecret: first.ofType('welcome')[0].resumeSecret });
    expect(first.closed).toEqual(['replaced by a newer connection']);
    expect(second.sent[0]).toMatchObject({ type: 'welcome', workerId });
    expect(hub.sessions.size).toBe(1);
    // The transport reports the old connection closed: the session stays with the new one.
    hub.onClose(first, 'closed');
    expect(hub.sessions.get(workerId)!.channel).toBe(second);
    expect(runner.workers.map((session) => session.id)).toEqual([workerId]);
  });

  it('a leave closes the connection and removes the worker from the job', async () => {
    const channel = new FakeChannel();
    await join(channel);
    send(channel, { type: 'leave', reason: 'done' });
    expect(channel.closed).toEqual(['bye']);
    expect(runner.workers).toEqual([]);
    expect([...hub.sessions.values()][0].channel).toBeUndefined();
  });
});
