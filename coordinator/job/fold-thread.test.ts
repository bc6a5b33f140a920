import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors } from '../../shared/codec/named.ts';
import { pack } from '../../shared/codec/packr.ts';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { PROTOCOL_VERSION, type Assign } from '../../shared/protocol/messages.ts';
import { handOver } from '../transports/handed-over.ts';
import { FakeChannel, testHub, updateFor, shapes as hubShapes } from '../test-fixtures.ts';
import { grads, makeJob, shapes, update, workers } from './job-fixtures.ts';
import type { Job } from './job.ts';

/*
 * The fold thread (fold-thread.ts): a round of training.foldThreadFrom
 * workers or more has its updates decoded, checked and folded off the event
 * loop. It must train as the event loop's fold does, refuse what the event
 * loop refuses with the same codes and fields, and lose nothing else when
 * the thread dies.
 */

const jobs: Job[] = [];
function threadedJob(foldThreadFrom: number): Job {
  const job = makeJob({ foldThreadFrom });
  jobs.push(job);
  return job;
}
afterEach(async () => {
  await Promise.all(jobs.splice(0).map((job) => job.dispose()));
});

/** Opens a round of both workers, sends each the update `tensorsOf` gives, settles the thread and closes the round. */
async function playRound(job: Job, now: number, tensorsOf: (worker: string) => ReturnType<typeof grads>) {
  await job.openRound(workers, now);
  const answers = await Promise.allSettled(workers.map(({ id }) => job.acceptUpdate(id, update(job, {}, tensorsOf(id)), now + 1)));
  await job.settleFoldThread();
  return { answers, summary: job.closeRound(now + 2) };
}

describe('the fold thread', () => {
  it('trains as the event loop folds: same weights over rounds, a held outlier settled at close', async () => {
    const threaded = threadedJob(2);
    const onLoop = threadedJob(0);
    // Round 3's worker a sends a gradient 30x the others': beyond τ, held whole until the close and clipped there. It is
    // the round's first update, so the thread decodes b's over the memory a's was decoded into: held means copied.
    const scale = (round: number, worker: string) => (round === 3 && worker === 'a' ? 30 : 1 + round * 0.5 + (worker === 'b' ? 0.25 : 0));
    for (const job of [threaded, onLoop]) {
      for (let round = 0; round < 5; round++) {
        const { answers, summary } = await playRound(job, round * 10, (worker) => grads(scale(round, worker)));
        expect(answers.every((answer) => answer.status === 'fulfilled')).toBe(true);
        expect(summary.applied).toBe(true);
        if (round === 3) expect(summary.outliers.map((outlier) => outlier.workerId)).toEqual(['a']);
        // The first round has no τ yet: aggregated whole on the event loop; the others fold in the thread when asked to.
        if (job === threaded && round > 0) expect(summary.updates.every((accepted) => Object.keys(accepted.grads).length === 0)).toBe(true);
      }
    }
    for (const name of Object.keys(shapes)) {
      const [got, want] = [threaded.state.weights[name], onLoop.state.weights[name]];
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i], 6);
    }
    expect(threaded.tau.generator).toBeCloseTo(onLoop.tau.generator, 6);
  });

  it('refuses non-finite and too-large updates with their codes and fields, as failures of the round, and applies the rest', async () => {
    const job = threadedJob(2);
    await playRound(job, 0, () => grads());
    await job.openRound([...workers, { id: 'c', batchSize: 4 }], 10);
    const nan = grads();
    nan.d_w[2] = NaN;
    const answers = await Promise.allSettled([
      job.acceptUpdate('a', update(job, {}, nan), 11),
      job.acceptUpdate('b', update(job, {}, grads(1000)), 11),
      job.acceptUpdate('c', update(job, {}, grads()), 11),
    ]);
    const refusals = answers.map((answer) => (answer.status === 'rejected' ? { code: answer.reason.code, field: answer.reason.field } : 'accepted'));
    expect(refusals).toEqual([{ code: ErrorCode.NonFinite, field: 'tensors.d_w' }, { code: ErrorCode.NormTooLarge, field: 'tensors' }, 'accepted']);
    const version = job.state.version;
    await job.settleFoldThread();
    const summary = job.closeRound(12);
    expect(summary.failures.map((failure) => [failure.workerId, failure.code])).toEqual([
      ['a', ErrorCode.NonFinite],
      ['b', ErrorCode.NormTooLarge],
    ]);
    expect(summary.updates.map((accepted) => accepted.workerId)).toEqual(['c']);
    expect(job.state.version).toBe(version + 1);
  });

  it('refuses a second update while the first is being checked, and waits for a pending update before closing', async () => {
    const job = threadedJob(2);
    await playRound(job, 0, () => grads());
    await job.openRound(workers, 10);
    const first = job.acceptUpdate('a', update(job), 11);
    expect(first).toBeInstanceOf(Promise);
    expect(() => job.acceptUpdate('a', update(job), 11)).toThrow(expect.objectContaining({ code: ErrorCode.DuplicateUpdate }));
    // A worker leaving while its update is checked does not undo it: the check decides.
    job.markFailed('a', 'LEFT', 'gone');
    expect(job.roundComplete()).toBe(false);
    expect(job.foldsOffThread).toBe(true);
    expect(() => job.closeRound(12)).toThrow(/settleFoldThread first/);
    await job.settleFoldThread();
    // Closing: the round takes no more updates.
    expect(() => job.acceptUpdate('b', update(job), 12)).toThrow(expect.objectContaining({ code: ErrorCode.WrongRound, field: 'round' }));
    const summary = job.closeRound(13);
    expect(summary.updates.map((accepted) => accepted.workerId)).toEqual(['a']);
    expect(summary.failures.map((failure) => failure.workerId)).toEqual(['b']);
    await first;
  });

  it("copies the update's bytes: a Buffer viewing a socket's larger chunk is left whole", async () => {
    const job = threadedJob(2);
    await playRound(job, 0, () => grads());
    await job.openRound(workers, 10);
    const wire = update(job).tensors;
    // As ws hands a small message: a Buffer over part of the chunk the socket read.
    const chunk = Buffer.alloc(wire.byteLength + 64);
    chunk.set(wire, 32);
    const view = chunk.subarray(32, 32 + wire.byteLength);
    await job.acceptUpdate('a', update(job, { tensors: view }), 11);
    expect(chunk.buffer.byteLength).toBe(wire.byteLength + 64);
    expect([...view]).toEqual([...wire]);
  });

  it("moves a handed-over message's buffer instead of copying it, and folds it as it folds a copy", async () => {
    const moved = threadedJob(2);
    const copied = threadedJob(2);
    for (const job of [moved, copied]) {
      await playRound(job, 0, () => grads());
      await job.openRound(workers, 10);
    }
    // As the WebSocket transport hands over a message ws read into a buffer of its own: the tensors a view inside it.
    const wire = update(moved).tensors;
    const message = new Uint8Array(wire.byteLength + 40);
    message.set(wire, 40);
    const tensors = handOver(message).subarray(40);
    await Promise.all([moved.acceptUpdate('a', update(moved, { tensors }), 11), moved.acceptUpdate('b', update(moved), 11)]);
    // Moved to the thread: every view of it is empty now.
    expect(message.byteLength).toBe(0);
    expect(tensors.byteLength).toBe(0);
    await Promise.all([copied.acceptUpdate('a', update(copied, { tensors: wire }), 11), copied.acceptUpdate('b', update(copied), 11)]);
    expect(wire.byteLength).toBeGreaterThan(0);
    for (const job of [moved, copied]) {
      await job.settleFoldThread();
      expect(job.closeRound(12).applied).toBe(true);
    }
    for (const name of Object.keys(shapes)) expect([...moved.state.weights[name]]).toEqual([...copied.state.weights[name]]);
  });

  it('loses only what it held when the thread dies: those updates fail as INTERNAL, the weights stay, the next round trains', async () => {
    const job = threadedJob(2);
    await playRound(job, 0, () => grads());
    await job.openRound(workers, 10);
    await job.acceptUpdate('a', update(job), 11);
    const weights = structuredClone(job.state.weights);
    const version = job.state.version;
    await job.dispose();
    // a's fold went with the thread; b, after it, is folded on the event loop.
    const b = job.acceptUpdate('b', update(job), 12);
    expect(b).not.toBeInstanceOf(Promise);
    await job.settleFoldThread();
    const summary = job.closeRound(13);
    expect(summary.failures.map((failure) => [failure.workerId, failure.code])).toEqual([['a', ErrorCode.Internal]]);
    expect(summary.updates.map((accepted) => accepted.workerId)).toEqual(['b']);
    expect(job.state.version).toBe(version + 1);
    expect(job.state.weights).not.toEqual(weights);
    // The next round starts a thread again.
    const { answers, summary: next } = await playRound(job, 20, () => grads());
    expect(answers.map((answer) => answer.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(next.updates).toHaveLength(2);
  });
});

/** Two workers said hello to `hub`; `send` delivers a message from one of them. */
function twoWorkers(hub: ReturnType<typeof testHub>['hub']) {
  const send = (channel: FakeChannel, message: unknown) => hub.onMessage(channel, pack(message).slice());
  const channels = [new FakeChannel(), new FakeChannel()];
  for (const channel of channels) send(channel, { type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test' });
  return { send, channels };
}

describe('a runner whose rounds fold in the thread', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('acknowledges checked updates, rejects a bad one with its code and field, and keeps training', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-fold-thread-'));
    const { hub, runner } = testHub(dir, {}, { foldThreadFrom: 2, minWorkers: 2 });
    try {
      const { send, channels } = twoWorkers(hub);
      const nan = getCodec('f32')
        .encode(arraysToTensors({ g_w: new Float32Array(6).fill(NaN), d_w: new Float32Array(4) }, hubShapes))
        .slice();
      for (let played = 0; played < 4; played++) {
        // The thread's first start (a second V8 isolate loading TypeScript) can take seconds beside other test files.
        await vi.waitFor(() => expect(runner.job.current?.assignments.size).toBe(2), { timeout: 20_000 });
        const round = runner.job.current!.round;
        const assigns = channels.map((channel) => channel.assigns().find((assign: Assign) => assign.round === round)!);
        // In round 2, the second worker sends NaNs.
        assigns.forEach((assign, k) => send(channels[k], updateFor(assign, played === 2 && k === 1 ? { tensors: nan } : {})));
        await vi.waitFor(() => expect(runner.lastRound?.round).toBe(round), { timeout: 20_000 });
        expect(runner.lastRound!.applied).toBe(true);
        if (played === 2) {
          expect(runner.lastRound!.failures).toEqual([expect.objectContaining({ code: ErrorCode.NonFinite })]);
          expect(channels[1].sent.find((message) => message.type === 'reject' && message.round === round)).toMatchObject({
            code: ErrorCode.NonFinite,
            field: 'tensors.g_w',
          });
        } else expect({ played, failures: runner.lastRound!.failures }).toEqual({ played, failures: [] });
        // Answered alone (the first round, on the event loop) or with the next assignment (the thread's rounds).
        const answered = (message: (typeof channels)[0]['sent'][number]) =>
          (message.type === 'ack' && message.round === round) || (message.type === 'assign' && message.acknowledges === round);
        expect(channels[0].sent.some(answered)).toBe(true);
      }
      expect(runner.job.state.version).toBe(4);
    } finally {
      hub.dispose();
      await runner.shutdown();
      runner.dispose();
    }
  });

  it('answers a folded round’s updates when it closes: with the next assignment, or alone when there is none', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-fold-thread-'));
    const { hub, runner } = testHub(dir, {}, { foldThreadFrom: 2, minWorkers: 2 });
    try {
      const { send, channels } = twoWorkers(hub);
      const assignsOf = (round: number) => channels.map((channel) => channel.assigns().find((assign: Assign) => assign.round === round)!);
      const acksOf = (channel: FakeChannel, round: number) => channel.sent.filter((message) => message.type === 'ack' && message.round === round);
      // The first round folds on the event loop (no clip radius yet), and answers each update at once.
      await vi.waitFor(() => expect(runner.job.current?.assignments.size).toBe(2), { timeout: 20_000 });
      const first = runner.job.current!.round;
      assignsOf(first).forEach((assign, k) => send(channels[k], updateFor(assign)));
      await vi.waitFor(() => expect(runner.job.current?.round).toBe(first + 1), { timeout: 20_000 });
      for (const channel of channels) expect(acksOf(channel, first)).toHaveLength(1);
      expect(assignsOf(first + 1).map((assign) => assign.acknowledges)).toEqual([undefined, undefined]);

      // The second folds in the thread: an update it accepted is not answered while the round is open...
      const second = first + 1;
      send(channels[0], updateFor(assignsOf(second)[0]));
      await vi.waitFor(() => expect(runner.job.current?.updates.has(runner.workers[0].id)).toBe(true), { timeout: 20_000 });
      expect(runner.job.foldsOffThread).toBe(true);
      expect(acksOf(channels[0], second)).toEqual([]);
      send(channels[1], updateFor(assignsOf(second)[1]));
      // ...and the next assignment carries its ack, right after the weights of the new version, with no ack alone.
      await vi.waitFor(() => expect(runner.job.current?.round).toBe(second + 1), { timeout: 20_000 });
      for (const channel of channels) {
        expect(acksOf(channel, second)).toEqual([]);
        expect(channel.last()).toMatchObject({ type: 'assign', round: second + 1, acknowledges: second });
      }

      // A round after which no assignment goes out (a worker left: the job waits for two): its ack goes alone.
      const third = second + 1;
      send(channels[0], updateFor(assignsOf(third)[0]));
      await vi.waitFor(() => expect(runner.job.current?.updates.has(runner.workers[0].id)).toBe(true), { timeout: 20_000 });
      hub.onClose(channels[1], 'test');
      await vi.waitFor(() => expect(runner.lastRound?.round).toBe(third), { timeout: 20_000 });
      expect(runner.job.current).toBeUndefined();
      expect(channels[0].last()).toEqual({ type: 'ack', round: third });
    } finally {
      hub.dispose();
      await runner.shutdown();
      runner.dispose();
    }
  });
});
