import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pack } from '../../shared/codec/packr.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import type { QualityReport } from '../../shared/eval/report.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { PROTOCOL_VERSION } from '../../shared/protocol/messages.ts';
import { parseJobConfig } from '../config.ts';
import { Hub } from '../hub.ts';
import { Job } from '../job/job.ts';
import { parseRoundLog, ROUND_LOG } from '../round-log.ts';
import { JobRunner } from '../job/runner.ts';
import { FakeChannel, fakeTrainer, shapes, updateFor } from '../test-fixtures.ts';
import type { Scorer } from './scoring-thread.ts';

/**
 * The runner with quality scoring: rounds go on while a scoring runs, its
 * line lands in the round log after them, and a job that spends its budget
 * says `finished` only once its final weights' line is written. The scorer
 * is a fake that answers after a delay (the real thread is in test/quality.test.ts).
 */
describe('JobRunner with quality scoring', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

  it('keeps closing rounds while a scoring runs, and finishes after the final weights are scored', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-runner-quality-'));
    dirs.push(dir);
    const config = parseJobConfig({
      id: 'unit',
      training: { batchSize: 4, rounds: 5, verification: { duplicateShare: 0 } },
      dataset: { shards: 2 },
      output: { dir, evalEvery: 2, checkpointEvery: 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000 },
    });
    const weights: NamedArrays = { g_w: new Float32Array(6), d_w: new Float32Array(4) };
    const job = new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
    const versionsAsked: number[] = [];
    let release: (() => void) | undefined;
    const scorer: Scorer = {
      score: () => {
        const version = job.state.version;
        versionsAsked.push(version);
        // The first scoring waits until the test lets it go; the others answer at once.
        const wait = versionsAsked.length === 1 ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve();
        return wait.then((): QualityReport => ({
          dataset: 'mnist',
          count: 500,
          frechet: 100 - version,
          frechetFloor: 10,
          precision: 0.5,
          recall: 0.5,
          recognisable: 0.5,
          coverageEntropy: 1,
          ms: 1,
        }));
      },
      close: async () => {},
    };
    const runner = new JobRunner(job, fakeTrainer(), Date.now, {}, () => scorer);
    const hub = new Hub({ defaultJobId: 'unit', heartbeatMs: 5000 });
    hub.addRunner(runner);
    const finished = new Promise<number>((resolve) => runner.on('finished', resolve));

    const channel = new FakeChannel();
    hub.onMessage(channel, pack({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'test' }).slice());
    const answered = new Set<number>();
    const answer = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        await vi.waitFor(() => expect(channel.assigns().some((assign) => !answered.has(assign.round))).toBe(true));
        const assign = channel.assigns().find((each) => !answered.has(each.round))!;
        answered.add(assign.round);
        hub.onMessage(channel, pack(updateFor(assign)).slice());
      }
    };
    // Version 2 is scored; while that scoring waits, versions 3 and 4 close (4 is due, and skipped: one runs).
    await answer(4);
    await vi.waitFor(() => expect(runner.history.length).toBe(4));
    expect(versionsAsked).toEqual([2]);
    expect(runner.quality.counts.skipped).toBe(1);
    release!();
    await answer(1);
    expect(await finished).toBe(5);
    // Version 5, the last, was scored before `finished`, its line written.
    expect(versionsAsked).toEqual([2, 5]);
    const { rounds, quality } = parseRoundLog(fs.readFileSync(path.join(dir, 'unit', ROUND_LOG), 'utf8'));
    expect(rounds.map((round) => round.round)).toEqual([0, 1, 2, 3, 4]);
    expect(quality.map((row) => [row.round, row.version, row.frechet])).toEqual([
      [1, 2, 98],
      [4, 5, 95],
    ]);
    hub.dispose();
    await runner.shutdown();
  });
});
