import { Hono } from 'hono';
import { encodeExamples, parseIndices } from '../shared/data/examples-wire.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { errorBody } from './api/auth.ts';
import { addEventRoutes } from './api/events.ts';
import { addJobRoutes, type JobRoutesOptions } from './api/jobs.ts';
import { openApiDocument } from './api/openapi.ts';
import { addWorkerRoutes } from './api/workers.ts';
import type { Hub } from './hub.ts';
import { createMetrics } from './metrics.ts';
import { addStaticRoutes } from './static.ts';

export { describeJob } from './api/jobs.ts';

/** The coordinator's HTTP routes (the worker protocol itself is on the WebSocket path and NATS). */
export function createApp(hub: Hub, options: JobRoutesOptions): Hono {
  const app = new Hono();
  app.get('/health', (c) => c.json({ ok: true, jobs: hub.runners.size }));
  app.get('/api/openapi.json', (c) => c.json(openApiDocument));
  // Open like /health: Prometheus scrapes it, and it names no secrets.
  const metrics = createMetrics(hub);
  app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'content-type': metrics.contentType }));
  addStaticRoutes(app);
  addJobRoutes(app, hub, options);
  addWorkerRoutes(app, hub, options);
  addEventRoutes(app, hub);

  // Training examples by index, for workers without a local copy of the dataset (browser tabs).
  app.get('/api/datasets/:id/examples', (c) => {
    if (c.req.param('id') !== 'mnist') return c.json(errorBody(new TesseraError(ErrorCode.InvalidConfig, `no dataset ${JSON.stringify(c.req.param('id'))}`, { field: 'id' })), 404);
    const dataset = loadMnist();
    try {
      const indices = parseIndices(c.req.query('indices') ?? '', dataset.count);
      return c.body(encodeExamples(dataset.batch(indices)) as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/x-msgpack', 'cache-control': 'public, max-age=86400, immutable' });
    } catch (error) {
      if (error instanceof TesseraError) return c.json(errorBody(error), 400);
      throw error;
    }
  });
  app.notFound((c) => c.json(errorBody(new TesseraError(ErrorCode.InvalidMessage, `no route ${c.req.method} ${new URL(c.req.url).pathname}`, { field: 'path' })), 404));
  return app;
}
