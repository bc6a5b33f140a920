import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context, Hono } from 'hono';
import type { JobDescription, JobList, QualityList, RoundList, SampleList } from '../../shared/api/jobs.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { CHECKPOINT_FILE } from '../checkpoint.ts';
import type { Hub } from '../hub.ts';
import type { JobRunner } from '../job/runner.ts';
import { jobData } from '../job-data.ts';
import { describeWorker } from '../workers.ts';
import { errorBody, requireToken } from './auth.ts';

export interface JobRoutesOptions {
  adminToken: string;
  readToken?: string;
  createJob(raw: unknown): Promise<JobRunner>;
}

/** A job as the API shows it. */
export function describeJob(runner: JobRunner): JobDescription {
  const { job } = runner;
  const last = runner.history.at(-1);
  return {
    id: job.config.id,
    status: runner.status,
    round: job.state.round,
    version: job.state.version,
    samplesSeen: job.state.samplesSeen,
    config: job.config,
    data: { ...jobData(job.config).dataShape, classNames: jobData(job.config).spec.classNames ?? [] },
    workers: runner.workers.map(describeWorker),
    lastRound: last ?? null,
    quality: { latest: runner.quality.latest ?? null, ...runner.quality.counts, running: runner.quality.busy },
    diverged: runner.diverged ?? null,
  };
}

const MODEL_FILES: Record<string, string> = { 'model.json': 'application/json', 'weights.bin': 'application/octet-stream' };
const SAMPLE_FILE = /^(round-\d{6}|latest)\.png$/;

function fail(c: Context, status: 400 | 401 | 404 | 409, error: TesseraError) {
  return c.json(errorBody(error), status);
}

const notFound = (what: string, field: string) => new TesseraError(ErrorCode.UnknownJob, what, { field });

/** The job API: list, get, create, pause, resume, stop; samples, model, checkpoint and weights downloads. */
export function addJobRoutes(app: Hono, hub: Hub, options: JobRoutesOptions): void {
  // The read token may also come as ?token= (the dashboard's EventSource cannot set headers); the admin token never does.
  const read = requireToken(
    () => (options.readToken ? [options.readToken, options.adminToken] : []),
    () => [options.readToken],
  );
  const admin = requireToken(() => [options.adminToken]);
  const runnerOf = (c: Context): JobRunner | TesseraError =>
    hub.runners.get(c.req.param('id')!) ?? new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(c.req.param('id'))}`, { field: 'id' });

  app.use('/api/jobs', read);
  app.use('/api/jobs/*', read);

  app.get('/api/jobs', (c) => c.json<JobList>({ jobs: [...hub.runners.values()].map(describeJob) }));

  app.post('/api/jobs', admin, async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return fail(c, 400, new TesseraError(ErrorCode.InvalidConfig, 'the body must be a JSON job config', { field: 'body' }));
    }
    try {
      const runner = await options.createJob(body);
      return c.json(describeJob(runner), 201);
    } catch (error) {
      if (error instanceof TesseraError) return fail(c, /exists already/.test(error.message) ? 409 : 400, error);
      throw error;
    }
  });

  app.get('/api/jobs/:id', (c) => {
    const runner = runnerOf(c);
    return runner instanceof TesseraError ? fail(c, 404, runner) : c.json(describeJob(runner));
  });

  const limitOf = (c: Context) => Math.min(Math.max(Number(c.req.query('limit') ?? 200) || 200, 1), 2000);

  app.get('/api/jobs/:id/rounds', (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return fail(c, 404, runner);
    return c.json<RoundList>({ rounds: runner.history.slice(-limitOf(c)) });
  });

  app.get('/api/jobs/:id/quality', (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return fail(c, 404, runner);
    return c.json<QualityList>({ quality: runner.quality.history.slice(-limitOf(c)) });
  });

  const action = (name: 'pause' | 'resume' | 'stop') =>
    app.post(`/api/jobs/:id/${name}`, admin, async (c) => {
      const runner = runnerOf(c);
      if (runner instanceof TesseraError) return fail(c, 404, runner);
      if (runner.ended && name !== 'stop')
        return fail(c, 409, new TesseraError(ErrorCode.JobNotRunning, `job ${runner.job.config.id} is ${runner.status}`, { field: 'status' }));
      if (name === 'pause') runner.pause();
      if (name === 'resume') runner.resume();
      if (name === 'stop') await runner.stopTraining();
      return c.json(describeJob(runner));
    });
  action('pause');
  action('resume');
  action('stop');

  app.get('/api/jobs/:id/samples', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return fail(c, 404, runner);
    const files = await readdir(join(runner.outputDir, 'samples')).catch(() => [] as string[]);
    const rounds = files.filter((file) => /^round-\d{6}\.png$/.test(file)).sort();
    return c.json<SampleList>({
      samples: rounds.map((file) => ({ round: Number(file.slice(6, 12)), url: `/api/jobs/${runner.job.config.id}/samples/${file}` })),
    });
  });

  app.get('/api/jobs/:id/samples/:file', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return fail(c, 404, runner);
    const file = c.req.param('file');
    if (!SAMPLE_FILE.test(file)) return fail(c, 404, notFound('expected round-NNNNNN.png or latest.png', 'file'));
    try {
      const png = await readFile(join(runner.outputDir, 'samples', file));
      return c.body(png, 200, { 'content-type': 'image/png', 'cache-control': file === 'latest.png' ? 'no-store' : 'public, max-age=86400' });
    } catch {
      return fail(c, 404, new TesseraError(ErrorCode.NotReady, 'no such samples yet', { field: 'file' }));
    }
  });

  // The exported generator, in the layout tf.loadLayersModel(url) reads.
  app.get('/api/jobs/:id/model/:file', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return fail(c, 404, runner);
    const file = c.req.param('file');
    if (!(file in MODEL_FILES)) return fail(c, 404, notFound('expected model.json or weights.bin', 'file'));
    try {
      const body = await readFile(join(runner.outputDir, 'model', file));
      return c.body(body, 200, { 'content-type': MODEL_FILES[file], 'cache-control': 'no-store' });
    } catch {
      return fail(c, 404, new TesseraError(ErrorCode.NotReady, 'no exported model yet', { field: 'model' }));
    }
  });

  app.get('/api/jobs/:id/checkpoint', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return fail(c, 404, runner);
    // From the job's store (its folder, or JetStream), its digest checked on the way.
    const body = await runner.outputs.store.loadCheckpoint();
    if (!body) return fail(c, 404, new TesseraError(ErrorCode.NotReady, 'no checkpoint yet', { field: 'checkpoint' }));
    return c.body(body as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/x-msgpack',
      'content-disposition': `attachment; filename="${runner.job.config.id}-${CHECKPOINT_FILE}"`,
    });
  });

  // The current master weights, as the f32 codec's bytes (what workers fetch).
  app.get('/api/jobs/:id/weights', async (c) => {
    const runner = runnerOf(c);
    if (runner instanceof TesseraError) return fail(c, 404, runner);
    const weights = runner.job.publishedWeights();
    return c.body(weights.bytes as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/x-msgpack',
      'x-tessera-version': String(weights.version),
      'x-tessera-hash': weights.hash,
      'x-tessera-codec': weights.codec,
    });
  });
}
