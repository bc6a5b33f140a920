import type { Context, Hono } from 'hono';
import type { WorkerRow, WorkerTrustAnswer } from '../../shared/api/workers.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Hub } from '../hub.ts';
import type { TrustState } from '../trust.ts';
import { describeWorker } from '../workers.ts';
import { errorBody, requireToken } from './auth.ts';

/** What a release or a ban answers: the worker's id and its trust now (and its table row while it is connected). */
function answer(workerId: string, trust: TrustState, row: WorkerRow | undefined): WorkerTrustAnswer {
  return { id: workerId, trust: trust.score, quarantined: trust.quarantined, banned: trust.banned, worker: row ?? null };
}

/**
 * Admin actions on one worker of a job: release it from quarantine (its
 * trust starts over), or ban it (disconnected now, its id refused at hello).
 * Both take the admin token in the Authorization header.
 */
export function addWorkerRoutes(app: Hono, hub: Hub, options: { adminToken: string }): void {
  const admin = requireToken(() => [options.adminToken]);
  /** The job and the worker the path names: a worker the job has never seen is a 404, not a record made up on the spot. */
  const target = (c: Context) => {
    const runner = hub.runners.get(c.req.param('id')!);
    if (!runner) return new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(c.req.param('id'))}`, { field: 'id' });
    const workerId = c.req.param('workerId')!;
    const session = hub.sessions.get(workerId);
    const known = (session && session.jobId === runner.job.config.id) || runner.verifier.known(workerId);
    if (!known)
      return new TesseraError(ErrorCode.UnknownWorker, `job ${runner.job.config.id} has no worker ${JSON.stringify(workerId.slice(0, 64))}`, {
        field: 'workerId',
      });
    return { runner, workerId, session: session?.jobId === runner.job.config.id ? session : undefined };
  };

  app.post('/api/jobs/:id/workers/:workerId/release', admin, (c) => {
    const found = target(c);
    if (found instanceof TesseraError) return c.json(errorBody(found), 404);
    const trust = found.runner.verifier.release(found.workerId);
    // With every worker quarantined the job was waiting: it may start again.
    void found.runner.maybeOpenRound();
    return c.json(answer(found.workerId, trust, found.session && describeWorker(found.session)));
  });

  app.post('/api/jobs/:id/workers/:workerId/ban', admin, (c) => {
    const found = target(c);
    if (found instanceof TesseraError) return c.json(errorBody(found), 404);
    const trust = found.runner.verifier.ban(found.workerId);
    const channel = found.session?.channel;
    if (channel) {
      const refusal = new TesseraError(ErrorCode.Unauthorized, `worker ${found.workerId} is banned from job ${found.runner.job.config.id}`, {
        field: 'workerId',
      });
      channel.send({ type: 'error', ...refusal.toWire() });
      // The transport reports the close: the hub and the runner let the worker go as on any disconnect.
      channel.close(ErrorCode.Unauthorized);
    }
    return c.json(answer(found.workerId, trust, found.session && describeWorker(found.session)));
  });
}
