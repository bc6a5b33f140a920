import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectNodeBackend } from '../../runtime/node/backend.ts';
import { openJob } from './open-job.ts';
import { ROUND_LOG } from '../round-log.ts';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { shapePng, writeShapeFolder } from '../../test/fixtures/image-folder.ts';

/** Opening a job on a folder an earlier start left behind. */
describe('openJob on an earlier run’s folder', () => {
  let root: string;
  const small = (dir: string) => ({ id: 'again', model: { config: { width: 4, latentDim: 8 } }, output: { dir } });

  beforeAll(async () => {
    await selectNodeBackend('wasm');
    root = mkdtempSync(join(tmpdir(), 'tessera-jobs-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('sets aside the round log of a run killed before its first checkpoint: rounds restart at 0 and are logged once', async () => {
    const dir = join(root, 'killed');
    mkdirSync(join(dir, 'again'), { recursive: true });
    const earlier = [0, 1, 2].map((round) => JSON.stringify({ round, version: round })).join('\n') + '\n';
    writeFileSync(join(dir, 'again', ROUND_LOG), earlier);
    const { runner, resumed } = await openJob(small(dir));
    expect(resumed).toBe(false);
    expect(runner.job.state.round).toBe(0);
    const files = readdirSync(join(dir, 'again'));
    expect(files).not.toContain(ROUND_LOG);
    const aside = files.filter((file) => /^rounds-before-.*\.jsonl$/.test(file));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, 'again', aside[0]), 'utf8')).toBe(earlier);
    runner.dispose();
  });

  it('keeps the rounds a checkpoint covers and drops the rest', async () => {
    const dir = join(root, 'checkpointed');
    const first = await openJob({ ...small(dir), training: { rounds: 0 } });
    // A checkpoint at round 0 (as a stop writes), then a log that ran ahead of it.
    await first.runner.flush();
    first.runner.dispose();
    writeFileSync(join(dir, 'again', ROUND_LOG), [0, 1].map((round) => JSON.stringify({ round })).join('\n') + '\n');
    const { runner, resumed } = await openJob(small(dir));
    expect(resumed).toBe(true);
    expect(readFileSync(join(dir, 'again', ROUND_LOG), 'utf8')).toBe('');
    runner.dispose();
  });

  it('keeps the quality lines of the rounds a checkpoint covers, and shows them again', async () => {
    const dir = join(root, 'quality');
    const first = await openJob({ ...small(dir), training: { rounds: 0 } });
    // A checkpoint at round 3: as if three rounds had run.
    Object.assign(first.runner.job.state, { round: 3, version: 3 });
    await first.runner.flush();
    first.runner.dispose();
    const round = (n: number) => ({ round: n, version: n, durationMs: 500, closedAt: new Date(10_000 + n * 1000).toISOString() });
    const quality = (n: number) => ({
      kind: 'quality',
      round: n,
      version: n + 1,
      samplesSeen: 64,
      wallMs: 1500 + n * 1000,
      closedAt: new Date(10_000 + n * 1000).toISOString(),
      frechet: 50 - n,
    });
    const lines = [round(0), round(1), quality(1), round(2), round(3), quality(3)];
    writeFileSync(join(dir, 'again', ROUND_LOG), lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
    const { runner, resumed } = await openJob({ ...small(dir), output: { dir, evalEvery: 7 } });
    expect(resumed).toBe(true);
    // How quality is watched follows this start, not the checkpoint.
    expect(runner.job.config.output.evalEvery).toBe(7);
    const kept = readFileSync(join(dir, 'again', ROUND_LOG), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(kept).toEqual([round(0), round(1), quality(1), round(2)]);
    expect(runner.quality.history).toEqual([quality(1)]);
    runner.dispose();
  });

  it('resumes an images job on the same folder, and refuses one whose images changed, naming dataset.path', async () => {
    process.env.TESSERA_CACHE = join(root, 'cache');
    const images = writeShapeFolder(join(root, 'shapes'), { perClass: 4, size: 16, seed: 3 });
    const dir = join(root, 'images');
    const job = (extra: object = {}) => ({ ...small(dir), dataset: { id: 'images', path: images, shape: [16, 16, 3], shards: 2 }, ...extra });
    const first = await openJob(job({ training: { rounds: 0 } }));
    const hash = first.runner.job.state.dataHash;
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    await first.runner.flush();
    first.runner.dispose();
    const again = await openJob(job());
    expect(again.resumed).toBe(true);
    expect(again.runner.job.state.dataHash).toBe(hash);
    again.runner.dispose();
    // One more circle: the shards, and what the checkpoint's positions in them mean, are not the same.
    writeFileSync(join(images, 'circle', 'extra.png'), shapePng('circle', 16, 99));
    await expect(openJob(job())).rejects.toMatchObject({
      code: ErrorCode.InvalidConfig,
      field: 'dataset.path',
      message: expect.stringMatching(/changed since/),
    });
  });
  it('starts a new job from another job’s sampling weights (model.initFrom) with fresh optimizers, and refuses a mismatch naming model.initFrom', async () => {
    const dir = join(root, 'init');
    const source = await openJob({ ...small(dir), id: 'source', training: { rounds: 0 } });
    const { state } = source.runner.job;
    // The EMA is what a job samples from: the new job takes it, not the trained weights.
    state.ema = Object.fromEntries(Object.entries(state.weights).map(([name, values]) => [name, new Float32Array(values.length).fill(name.length / 100)]));
    Object.assign(state, { round: 7, version: 7 });
    state.optimizers[Object.keys(state.optimizers)[0]].step = 7;
    await source.runner.flush();
    source.runner.dispose();
    const { runner, resumed } = await openJob({ ...small(dir), id: 'tuned', model: { ...small(dir).model, initFrom: join(dir, 'source') } });
    expect(resumed).toBe(false);
    const started = runner.job.state;
    expect([started.round, started.version]).toEqual([0, 0]);
    for (const [name, values] of Object.entries(started.weights)) expect([...new Set(values)]).toEqual([Math.fround(name.length / 100)]);
    for (const optimizer of Object.values(started.optimizers)) expect(optimizer.step).toBe(0);
    expect(runner.job.config.model.initFrom).toBe(join(dir, 'source'));
    runner.dispose();
    // By the job's id in the store (what a JetStream-held job's divergence message names): the same weights.
    const byId = await openJob({ ...small(dir), id: 'tuned-by-id', model: { ...small(dir).model, initFrom: 'store:source' } });
    for (const [name, values] of Object.entries(byId.runner.job.state.weights)) expect([...new Set(values)]).toEqual([Math.fround(name.length / 100)]);
    byId.runner.dispose();
    for (const model of [
      { config: { width: 8, latentDim: 8 }, initFrom: join(dir, 'source') },
      { id: 'vae', initFrom: join(dir, 'source') },
      { config: { width: 4, latentDim: 8 }, initFrom: join(dir, 'nothing-here') },
      { config: { width: 4, latentDim: 8 }, initFrom: 'store:nothing-here' },
      { config: { width: 4, latentDim: 8 }, initFrom: 'store:not an id' },
    ]) {
      await expect(openJob({ ...small(dir), id: 'refused', model })).rejects.toMatchObject({ code: ErrorCode.InvalidConfig, field: 'model.initFrom' });
    }
  });
});
