import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors } from '../../shared/codec/named.ts';
import { pack } from '../../shared/codec/packr.ts';
import { PROTOCOL_VERSION, type Assign } from '../../shared/protocol/messages.ts';
import { describeJob } from '../api/jobs.ts';
import type { Hub } from '../hub.ts';
import { FolderStore } from '../store/folder-store.ts';
import type { JobStore } from '../store/job-store.ts';
import { FakeChannel, shapes, testHub, updateFor } from '../test-fixtures.ts';
import { DIVERGED_ROUNDS, type JobRunner } from './runner.ts';

/** A job whose every update is refused for its norm pauses and says how to go on; one bad worker among good ones does not. */

const hello = { type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test' };
const blownUp = getCodec('f32')
  .encode(arraysToTensors({ g_w: new Float32Array(6).fill(1e30), d_w: new Float32Array(4).fill(1e30) }, shapes))
  .slice();

describe('a job whose training diverged', () => {
  let dir: string;
  let hub: Hub;
  let runner: JobRunner;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-diverged-'));
    ({ hub, runner } = testHub(dir));
  });
  afterEach(async () => {
    hub.dispose();
    await runner.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const send = (channel: FakeChannel, message: unknown) => hub.onMessage(channel, pack(message).slice());
  /** Both workers answer the open round, each with a blown-up or a valid update; resolves once the next round opened or the job paused. */
  async function playRound(workers: FakeChannel[], blown: (worker: number) => boolean): Promise<void> {
    const round = runner.job.current!.round;
    const assigns = workers.map((channel) => channel.assigns().find((assign: Assign) => assign.round === round));
    assigns.forEach((assign, k) => assign && send(workers[k], updateFor(assign, blown(k) ? { tensors: blownUp } : {})));
    await vi.waitFor(() => expect((runner.job.current !== undefined && runner.job.current.round !== round) || runner.status === 'paused').toBe(true));
  }
  async function joinBoth(): Promise<FakeChannel[]> {
    const workers = [new FakeChannel(), new FakeChannel()];
    for (const channel of workers) send(channel, hello);
    // A round with both in it: the first may have opened with one.
    await vi.waitFor(() => expect(runner.workers.length).toBe(2));
    await vi.waitFor(() => expect(runner.job.current).toBeDefined());
    while (runner.job.current!.assignments.size < 2) await playRound(workers, () => false);
    return workers;
  }

  it('names model.initFrom=store:<its id> when JetStream holds its checkpoint (a new job reads it there, not in the output folder)', async () => {
    hub.dispose();
    await runner.shutdown();
    // A folder store that says it is the JetStream one: the message depends on the kind only.
    const store = new Proxy(new FolderStore(dir), { get: (target, key) => (key === 'kind' ? 'nats' : Reflect.get(target, key, target)) }) as JobStore;
    ({ hub, runner } = testHub(dir, {}, {}, store));
    const workers = await joinBoth();
    const messages: string[] = [];
    runner.on('diverged', (message) => messages.push(message));
    for (let i = 0; i < DIVERGED_ROUNDS; i++) await playRound(workers, () => true);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('--set model.initFrom=store:unit ');
    expect(messages[0]).not.toContain(runner.outputDir);
  });

  it(`pauses after ${DIVERGED_ROUNDS} rounds of every update refused for its norm, and names model.initFrom and a lower rate`, async () => {
    const workers = await joinBoth();
    const messages: string[] = [];
    runner.on('diverged', (message) => messages.push(message));
    const version = runner.job.state.version;
    for (let i = 0; i < DIVERGED_ROUNDS; i++) {
      expect(runner.status).toBe('running');
      await playRound(workers, () => true);
    }
    expect(runner.status).toBe('paused');
    expect(runner.job.current).toBeUndefined();
    expect(runner.job.state.version).toBe(version);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/training diverged/);
    // The folder of its checkpoint (the job's output folder, with the default store).
    expect(messages[0]).toContain(`--set model.initFrom=${runner.outputDir} `);
    expect(messages[0]).toMatch(/--set optimizers\.generator\.learningRate=/);
    expect(runner.diverged?.message).toBe(messages[0]);
    // The job API and the dashboard show it.
    expect(describeJob(runner).diverged).toEqual({ round: runner.job.state.round - 1, message: messages[0] });
    // Resuming is the operator's call: the job trains again, the watch starts over.
    runner.resume();
    expect(runner.diverged).toBeUndefined();
    expect(describeJob(runner).diverged).toBeNull();
  });

  it('goes on when only one of the workers sends blown-up updates: the round applies the other', async () => {
    const workers = await joinBoth();
    const version = runner.job.state.version;
    for (let i = 0; i < DIVERGED_ROUNDS + 1; i++) await playRound(workers, (worker) => worker === 0);
    expect(runner.status).toBe('running');
    expect(runner.diverged).toBeUndefined();
    expect(runner.job.state.version).toBe(version + DIVERGED_ROUNDS + 1);
  });
});
