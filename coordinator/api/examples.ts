import type { Context, Hono } from 'hono';
import { encodeExamples, parseIndices } from '../../shared/data/examples-wire.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { parseSessionAuthorization } from '../../shared/protocol/session-auth.ts';
import type { Hub } from '../hub.ts';
import { jobData } from '../job-data.ts';
import { identityOf } from '../identity.ts';
import type { Job } from '../job/job.ts';
import { refuseRequest } from './auth.ts';

/**
 * Dataset indices the coordinator would still take a gradient on from this
 * worker: its assignment in the open round, and those of closed rounds it
 * missed that a late update may still fill.
 */
export function liveIndices(job: Job, workerId: string): Set<number> {
  const indices = new Set<number>(job.current?.assignments.get(workerId)?.message.sampleIndices);
  for (const assignment of job.missedAssignments(workerId)) for (const index of assignment.message.sampleIndices) indices.add(index);
  return indices;
}

/**
 * Training examples by index, for workers without a local copy of the
 * dataset (browser tabs). Only for a worker's live session (its credential
 * from the welcome) and only the indices it was assigned: one batch per
 * request at most, so a client that never reads its responses holds little.
 */
export function addExampleRoutes(app: Hono, hub: Hub): void {
  const fail = (c: Context, status: 400 | 401 | 403 | 404, error: TesseraError) => refuseRequest(c, hub.refusals, status, error);
  /** The connected worker session the request's credential names, or the refusal to send. */
  const sessionOf = (c: Context) => {
    // Who asks comes first: an anonymous request costs a few bytes, whatever it asks for.
    const credential = parseSessionAuthorization(c.req.header('authorization'));
    if (!credential)
      return fail(
        c,
        401,
        new TesseraError(
          ErrorCode.Unauthorized,
          'examples and shards are served to a worker session: Authorization: Bearer <workerId>.<dataToken> from its welcome',
          {
            field: 'authorization',
          },
        ),
      );
    const session = hub.sessions.get(credential.workerId);
    if (!session || !session.channel || !identityOf(hub).secrets.authorisesData(session, credential.dataToken)) {
      return fail(c, 401, new TesseraError(ErrorCode.Unauthorized, 'not the credential of a connected worker', { field: 'authorization' }));
    }
    return session;
  };

  // A folder dataset's shards by content hash, to its job's workers. A shard's bytes never change under its hash:
  // the worker may keep it as long as it likes, and checks the hash of what it got.
  app.get('/api/shards/:hash', (c) => {
    const session = sessionOf(c);
    if (session instanceof Response) return session;
    const runner = hub.runners.get(session.jobId);
    const bytes = runner ? jobData(runner.job.config).shards.get(c.req.param('hash')) : undefined;
    if (!bytes) return fail(c, 404, new TesseraError(ErrorCode.NotAssigned, "no shard of that hash in this worker's job", { field: 'hash' }));
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/x-msgpack', 'cache-control': 'private, max-age=31536000, immutable' });
  });

  app.get('/api/datasets/:id/examples', (c) => {
    const session = sessionOf(c);
    if (session instanceof Response) return session;
    const runner = hub.runners.get(session.jobId);
    const datasetId = c.req.param('id');
    if (!runner || datasetId !== runner.job.config.dataset.id)
      return fail(c, 404, new TesseraError(ErrorCode.InvalidConfig, `no dataset ${JSON.stringify(datasetId)} in this worker's job`, { field: 'id' }));
    const dataset = jobData(runner.job.config).dataset();
    let indices: number[];
    try {
      indices = parseIndices(c.req.query('indices') ?? '', dataset.count);
    } catch (error) {
      if (error instanceof TesseraError) return fail(c, 400, error);
      throw error;
    }
    const allowed = liveIndices(runner.job, session.id);
    const outside = indices.findIndex((index) => !allowed.has(index));
    if (outside >= 0)
      return fail(
        c,
        403,
        new TesseraError(ErrorCode.NotAssigned, `index ${indices[outside]} is not in an assignment of worker ${session.id} that is still open`, {
          field: `indices[${outside}]`,
        }),
      );
    // Per session and short-lived: no shared cache may keep it.
    return c.body(encodeExamples(dataset.batch(indices)) as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/x-msgpack',
      'cache-control': 'private, no-store',
    });
  });
}
