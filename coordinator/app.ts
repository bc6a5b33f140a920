import { Hono } from 'hono';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { errorBody } from './api/auth.ts';
import { addEventRoutes } from './api/events.ts';
import { addExampleRoutes } from './api/examples.ts';
import { addJoinTokenRoutes } from './api/join-tokens.ts';
import { addJobRoutes, type JobRoutesOptions } from './api/jobs.ts';
import { addNatsIdentityRoutes } from './api/nats-identities.ts';
import { openApiDocument } from './api/openapi.ts';
import { addWorkerRoutes } from './api/workers.ts';
import type { Hub } from './hub.ts';
import type { NatsIdentityPool } from './nats-identities.ts';
import { createMetrics } from './metrics.ts';
import { addStaticRoutes } from './static.ts';

export { describeJob } from './api/jobs.ts';

export interface AppOptions extends JobRoutesOptions {
  /** The shared worker token: it gets a worker a NATS identity. */
  workerToken?: string;
  /** NATS identities to lend to workers, one each. */
  natsIdentities?: NatsIdentityPool;
}

/** The coordinator's HTTP routes (the worker protocol itself is on the WebSocket path and NATS). */
export function createApp(hub: Hub, options: AppOptions): Hono {
  const app = new Hono();
  app.get('/health', (c) => c.json({ ok: true, jobs: hub.runners.size }));
  // Kubernetes' names: alive, and ready for traffic. A standby (standby.ts) answers the same paths, /readyz with 503.
  app.get('/healthz', (c) => c.json({ ok: true, jobs: hub.runners.size }));
  app.get('/readyz', (c) => c.json({ ready: true, jobs: hub.runners.size }));
  app.get('/api/openapi.json', (c) => c.json(openApiDocument));
  // Open like /health: Prometheus scrapes it, and it names no secrets.
  const metrics = createMetrics(hub);
  app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'content-type': metrics.contentType }));
  addStaticRoutes(app);
  addJobRoutes(app, hub, options);
  addWorkerRoutes(app, hub, options);
  addEventRoutes(app, hub);
  addJoinTokenRoutes(app, hub, options);
  addExampleRoutes(app, hub);
  addNatsIdentityRoutes(app, hub, options);
  app.notFound((c) =>
    c.json(errorBody(new TesseraError(ErrorCode.InvalidMessage, `no route ${c.req.method} ${new URL(c.req.url).pathname}`, { field: 'path' })), 404),
  );
  return app;
}
