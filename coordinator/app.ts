import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Hono, type Context } from 'hono';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { CHECKPOINT_FILE } from './checkpoint.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { encodeExamples, parseIndices } from '../shared/data/examples-wire.ts';
import type { Hub } from './hub.ts';
import { addStaticRoutes } from './static.ts';
import type { JobRunner } from './runner.ts';
import { describeWorker } from './workers.ts';

/** A job as the API shows it. */
export function describeJob(runner: JobRunner) {
  const { job } = runner;
  return {
    id: job.config.id,
    status: runner.status,
    round: job.state.round,
    version: job.state.version,
    samplesSeen: job.state.samplesSeen,
    config: job.config,
    workers: runner.workers.map(describeWorker),
    lastRound: runner.lastRound && {
      round: runner.lastRound.round,
      durationMs: runner.lastRound.durationMs,
      samples: runner.lastRound.samples,
      samplesPerSecond: runner.lastRound.samplesPerSecond,
      losses: runner.lastRound.losses,
      updates: runner.lastRound.updates.length,
      failures: runner.lastRound.failures,
    },
  };
}

function errorResponse(c: Context, status: 400 | 401 | 404, error: TesseraError) {
  return c.json({ error: error.toWire() }, status);
}

const MODEL_FILES: Record<string, string> = { 'model.json': 'application/json', 'weights.bin': 'application/octet-stream' };

/** The coordinator's HTTP routes (the worker protocol itself is on the WebSocket path). */
export function createApp(hub: Hub): Hono {
  const app = new Hono();
  const runnerOf = (c: Context): JobRunner | TesseraError =>
    hub.runners.get(c.req.param('id')!) ?? new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(c.req.param('id'))}`, { field: 'id' });

  app.get('/health', (c) => c.json({ ok: true, jobs: hub.runners.size }));
  addStaticRoutes(app);
  app.get('/api/jobs', (c) => c.json({ jobs: [...hub.runners.values()].map(describeJob) }));
  app.get('/api/jobs/:id', (c) => {
    const runner = runnerOf(c);
    return runner instanceof TesseraError ? errorResponse(c, 404, runner) : c.json(describeJob(runner));
  });
  app.get('/api/jobs/:id/samples/latest.png', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return errorResponse(c, 404, runner);
    try {
      const png = await readFile(join(runner.outputDir, 'samples', 'latest.png'));
      return c.body(png, 200, { 'content-type': 'image/png', 'cache-control': 'no-store' });
    } catch {
      return errorResponse(c, 404, new TesseraError(ErrorCode.UnknownJob, 'no samples yet', { field: 'samples' }));
    }
  });
  // The current master weights, as the f32 codec's bytes (what workers fetch).
  app.get('/api/jobs/:id/weights', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return errorResponse(c, 404, runner);
    const weights = await runner.job.publishedWeights();
    return c.body(weights.bytes as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/x-msgpack',
      'x-tessera-version': String(weights.version),
      'x-tessera-hash': weights.hash,
      'x-tessera-codec': weights.codec,
    });
  });
  app.get('/api/jobs/:id/checkpoint', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return errorResponse(c, 404, runner);
    try {
      const body = await readFile(join(runner.outputDir, CHECKPOINT_FILE));
      return c.body(body, 200, { 'content-type': 'application/x-msgpack', 'content-disposition': `attachment; filename="${runner.job.config.id}-${CHECKPOINT_FILE}"` });
    } catch {
      return errorResponse(c, 404, new TesseraError(ErrorCode.BadCheckpoint, 'no checkpoint yet', { field: 'checkpoint' }));
    }
  });
  // Training examples by index, for workers without a local copy of the dataset (browser tabs).
  app.get('/api/datasets/:id/examples', (c) => {
    if (c.req.param('id') !== 'mnist') return errorResponse(c, 404, new TesseraError(ErrorCode.InvalidConfig, `no dataset ${JSON.stringify(c.req.param('id'))}`, { field: 'id' }));
    const dataset = loadMnist();
    try {
      const indices = parseIndices(c.req.query('indices') ?? '', dataset.count);
      return c.body(encodeExamples(dataset.batch(indices)) as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/x-msgpack', 'cache-control': 'public, max-age=86400, immutable' });
    } catch (error) {
      if (error instanceof TesseraError) return errorResponse(c, 400, error);
      throw error;
    }
  });
  // The exported generator, in the layout tf.loadLayersModel(url) reads.
  app.get('/api/jobs/:id/model/:file', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return errorResponse(c, 404, runner);
    const file = c.req.param('file');
    if (!(file in MODEL_FILES)) return errorResponse(c, 404, new TesseraError(ErrorCode.InvalidMessage, 'expected model.json or weights.bin', { field: 'file' }));
    try {
      const body = await readFile(join(runner.outputDir, 'model', file));
      return c.body(body, 200, { 'content-type': MODEL_FILES[file], 'cache-control': 'no-store' });
    } catch {
      return errorResponse(c, 404, new TesseraError(ErrorCode.UnknownJob, 'no exported model yet', { field: 'model' }));
    }
  });
  return app;
}
