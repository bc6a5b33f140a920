import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pack } from '../shared/codec/packr.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { LIMITS, PROTOCOL_VERSION, type Assign } from '../shared/protocol/messages.ts';
import type { Hub, HubOptions } from './hub.ts';
import { DEFAULT_DOOR_LIMITS, updateFrameLimit } from './limits.ts';
import type { JobRunner } from './job/runner.ts';
import { FakeChannel, shapes, testHub, updateFor } from './test-fixtures.ts';

/** The door's limits, through the hub with fake channels: sizes by stage, deadlines, caps, rates, pruning. */

const hello = { type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the door', () => {
  let dir: string;
  let hub: Hub;
  let runner: JobRunner;

  function makeHub(limits: HubOptions['limits'] = {}): void {
    ({ hub, runner } = testHub(dir, { limits }));
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-door-'));
    makeHub();
  });
  afterEach(async () => {
    hub.dispose();
    await runner.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const send = (channel: FakeChannel, message: unknown) => hub.onMessage(channel, pack(message).slice());
  async function join(channel: FakeChannel): Promise<Assign> {
    send(channel, hello);
    await vi.waitFor(() => expect(channel.assigns().length).toBeGreaterThan(0));
    return channel.assigns().at(-1)!;
  }

  it('holds a connection to a hello-sized limit until its hello is accepted, then to its job’s largest update', async () => {
    const channel = new FakeChannel();
    hub.onOpen(channel);
    expect(channel.limits).toEqual([DEFAULT_DOOR_LIMITS.preHelloFrameBytes]);
    // Refused by size, never decoded: a 64 kB frame of empty maps is not even looked at.
    hub.onMessage(channel, new Uint8Array(64 * 1024).fill(0x80));
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.TooLarge, field: 'message' });
    await join(channel);
    const limit = updateFrameLimit(shapes, DEFAULT_DOOR_LIMITS.updateMarginBytes);
    expect(channel.limits.at(-1)).toBe(limit);
    expect(limit).toBeLessThan(LIMITS.maxTensorBytes);
    hub.onMessage(channel, new Uint8Array(limit + 1));
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.TooLarge, field: 'message' });
  });

  it('refuses large messages other than updates, and updates whose tensors are above what their codec writes', async () => {
    const channel = new FakeChannel();
    const assign = await join(channel);
    send(channel, { type: 'fetchWeights', hash: assign.weightsHash, padding: new Uint8Array(DEFAULT_DOOR_LIMITS.controlMessageBytes) });
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.TooLarge, field: 'message' });
    const tooMany = new Uint8Array(updateFrameLimit(shapes, 0) + 1);
    send(channel, updateFor(assign, { tensors: tooMany }));
    expect(channel.answer()).toMatchObject({ type: 'reject', round: assign.round, code: ErrorCode.TooLarge, field: 'tensors' });
    // Again, against the bound the hub kept for this job and codec.
    send(channel, updateFor(assign, { tensors: tooMany }));
    const again = channel.answer() as { code: string; message: string };
    expect(again).toMatchObject({ code: ErrorCode.TooLarge, field: 'tensors' });
    expect(again.message).toMatch(/^\d+ bytes of tensors, above the \d+ the f32 codec writes for this job's model$/);
    expect(runner.job.state.version).toBe(0);
    send(channel, updateFor(assign));
    expect(channel.answer()).toEqual({ type: 'ack', round: assign.round });
  });

  it('refuses extension types and a type that is not a short string, naming only its kind and size', async () => {
    const channel = new FakeChannel();
    // msgpackr would make a 4 kB BigInt of this (ext type 0x42); the door does not know extensions.
    const bigint = new Uint8Array(4 + 4096).fill(0x7f);
    bigint.set([0xc8, 0x10, 0x00, 0x42]);
    hub.onMessage(channel, bigint);
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.DecodeFailed });
    await join(channel);
    send(channel, { type: new Uint8Array(8000) });
    const reject = channel.last();
    expect(reject).toMatchObject({ type: 'reject', code: ErrorCode.UnknownMessageType, field: 'type' });
    expect(reject?.type === 'reject' && reject.message.length).toBeLessThan(100);
    send(channel, { type: 'x'.repeat(33) });
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.UnknownMessageType, field: 'type' });
  });

  it('closes a connection that has not said hello by the deadline, and only that one', async () => {
    makeHub({ helloDeadlineMs: 50 });
    const silent = new FakeChannel();
    const protocolMismatch = new FakeChannel();
    const worker = new FakeChannel();
    for (const channel of [silent, protocolMismatch, worker]) hub.onOpen(channel);
    send(protocolMismatch, { ...hello, protocol: PROTOCOL_VERSION + 1 });
    await join(worker);
    expect(hub.waitingForHello).toBe(2);
    await sleep(120);
    for (const channel of [silent, protocolMismatch]) {
      expect(channel.closed).toEqual([expect.stringMatching(/^NOT_REGISTERED: no hello within 50 ms/)]);
      expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.NotRegistered, field: 'hello' });
      hub.onClose(channel, 'closed');
    }
    expect(worker.closed).toEqual([]);
    expect(hub.waitingForHello).toBe(0);
  });

  it('caps connections waiting for hello per address and in all; a welcomed one frees its place', async () => {
    makeHub({ maxPreHelloPerAddress: 2, maxPreHelloTotal: 3 });
    const [a1, a2, a3] = [new FakeChannel('10.0.0.1'), new FakeChannel('10.0.0.1'), new FakeChannel('10.0.0.1')];
    for (const channel of [a1, a2, a3]) hub.onOpen(channel);
    expect(a3.closed).toEqual([expect.stringMatching(/^RATE_LIMITED: /)]);
    expect(a3.last()).toMatchObject({ type: 'reject', code: ErrorCode.RateLimited, field: 'connection' });
    hub.onClose(a3, 'closed');
    const b1 = new FakeChannel('10.0.0.2');
    const b2 = new FakeChannel('10.0.0.2');
    hub.onOpen(b1);
    hub.onOpen(b2);
    expect(b1.closed).toEqual([]);
    expect(b2.closed).toEqual([expect.stringMatching(/^RATE_LIMITED: /)]);
    await join(a1);
    const a4 = new FakeChannel('10.0.0.1');
    hub.onOpen(a4);
    expect(a4.closed).toEqual([]);
    expect(hub.refusals.get(ErrorCode.RateLimited)).toBe(2);
  });

  it('refuses messages beyond the connection’s rate with RATE_LIMITED, and closes it when it keeps on', async () => {
    makeHub({ messagesPerSecond: 1, messageBurst: 5, rateStrikes: 3 });
    const channel = new FakeChannel();
    await join(channel);
    for (let i = 0; i < 4; i++) send(channel, { type: 'heartbeat' });
    expect(channel.ofType('reject')).toEqual([]);
    send(channel, { type: 'heartbeat' });
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.RateLimited, field: 'message' });
    expect(channel.closed).toEqual([]);
    for (let i = 0; i < 3; i++) send(channel, { type: 'heartbeat' });
    expect(channel.closed).toEqual([expect.stringMatching(/^RATE_LIMITED: /)]);
  });

  it('counts bytes per second too: a connection may not send more than its byte rate allows', async () => {
    makeHub({ bytesPerSecond: 1, messageBurst: 100_000 });
    const channel = new FakeChannel();
    const assign = await join(channel);
    const update = pack(updateFor(assign)).slice();
    // The bucket holds two whole updates of the job; the third in the same second is refused.
    const limit = updateFrameLimit(shapes, DEFAULT_DOOR_LIMITS.updateMarginBytes);
    const count = Math.floor((2 * limit) / update.byteLength);
    for (let i = 0; i < count; i++) hub.onMessage(channel, update);
    expect(channel.ofType('reject').filter((reject) => reject.code === ErrorCode.RateLimited)).toEqual([]);
    hub.onMessage(channel, update);
    expect(channel.last()).toMatchObject({ type: 'reject', code: ErrorCode.RateLimited });
  });

  it('lets a connection send a second of its byte rate at once: several whole updates read within one millisecond pass', async () => {
    const limit = updateFrameLimit(shapes, DEFAULT_DOOR_LIMITS.updateMarginBytes);
    makeHub({ bytesPerSecond: 8 * limit, messageBurst: 100_000 });
    const channel = new FakeChannel();
    const assign = await join(channel);
    const update = pack(updateFor(assign)).slice();
    // More than two updates' worth (the old burst) and less than a second of the rate; the clock may not even move.
    const count = Math.floor((4 * limit) / update.byteLength);
    expect(count * update.byteLength).toBeGreaterThan(2 * limit);
    for (let i = 0; i < count; i++) hub.onMessage(channel, update);
    expect(channel.ofType('reject').filter((reject) => reject.code === ErrorCode.RateLimited)).toEqual([]);
  });

  it('forgets a departed worker’s session after the grace period, keeps one that came back, and keeps at most maxAwaySessions', async () => {
    makeHub({ sessionGraceMs: 80, maxAwaySessions: 2 });
    const channels = [new FakeChannel(), new FakeChannel(), new FakeChannel(), new FakeChannel()];
    for (const channel of channels) send(channel, hello);
    const ids = channels.map((channel) => channel.workerId());
    expect(hub.sessions.size).toBe(4);
    for (const channel of channels.slice(0, 3)) hub.onClose(channel, 'gone');
    // Three away, two kept: the oldest went at once.
    expect([...hub.sessions.keys()]).toEqual(ids.slice(1));
    const back = new FakeChannel();
    send(back, { ...hello, workerId: ids[1], resumeSecret: channels[1].ofType('welcome')[0].resumeSecret });
    await sleep(150);
    expect([...hub.sessions.keys()].sort()).toEqual([ids[1], ids[3]].sort());
    expect(runner.workers.map((session) => session.id).sort()).toEqual([ids[1], ids[3]].sort());
  });

  it('refuses an update with losses the model does not declare or absurd ones, and the weights stay', async () => {
    const channel = new FakeChannel();
    let assign = await join(channel);
    for (const [losses, field] of [
      [{ d: 1, evil: 2 }, 'losses.evil'],
      [{ d: 1e308, g: -1e308 }, 'losses.d'],
    ] as const) {
      send(channel, updateFor(assign, { losses }));
      expect(channel.answer()).toMatchObject({ type: 'reject', round: assign.round, code: ErrorCode.InvalidMessage, field });
      await vi.waitFor(() => expect(channel.assigns().at(-1)!.round).toBeGreaterThan(assign.round));
      assign = channel.assigns().at(-1)!;
    }
    expect(runner.job.state.version).toBe(0);
  });
});
