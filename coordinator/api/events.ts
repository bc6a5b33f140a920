import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Hub } from '../hub.ts';
import { roundRow, type RoundRow } from '../runner.ts';
import type { RoundSummary } from '../job.ts';
import { describeWorker, type WorkerSession } from '../workers.ts';
import { errorBody } from './auth.ts';
import { describeJob } from './jobs.ts';

/** Comment lines keep proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

/**
 * Live job events as Server-Sent Events: a `snapshot` first (the job and its
 * recent rounds), then `round`, `workers`, `status` and `samples` as they
 * happen. One push per event, no polling.
 */
export function addEventRoutes(app: Hono, hub: Hub): void {
  app.get('/api/jobs/:id/events', (c) => {
    const runner = hub.runners.get(c.req.param('id'));
    if (!runner) return c.json(errorBody(new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(c.req.param('id'))}`, { field: 'id' })), 404);
    return streamSSE(c, async (stream) => {
      const queue: { event: string; data: unknown }[] = [];
      let wake: (() => void) | undefined;
      const push = (event: string, data: unknown) => {
        queue.push({ event, data });
        wake?.();
      };
      const workers = () => runner.workers.map(describeWorker);
      const onRound = (summary: RoundSummary) => {
        // The runner has put the round's row in its history before telling.
        const row: RoundRow = runner.history.at(-1)?.round === summary.round ? runner.history.at(-1)! : roundRow(summary, Date.now());
        push('round', row);
        push('workers', workers());
      };
      const onMembership = (session: WorkerSession) => {
        if (session.jobId === runner.job.config.id) push('workers', workers());
      };
      const onStatus = (status: string) => push('status', { status, round: runner.job.state.round, version: runner.job.state.version });
      const onSamples = (_path: string, round: number) => push('samples', { round, url: `/api/jobs/${runner.job.config.id}/samples/latest.png?round=${round}` });
      runner.on('round', onRound);
      runner.on('status', onStatus);
      runner.on('samples', onSamples);
      hub.on('joined', onMembership);
      hub.on('left', onMembership);
      const keepalive = setInterval(() => push('keepalive', {}), KEEPALIVE_MS);
      let open = true;
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      push('snapshot', { job: describeJob(runner), rounds: runner.history.slice(-300) });
      try {
        while (open) {
          while (queue.length > 0 && open) {
            const { event, data } = queue.shift()!;
            await stream.writeSSE({ event, data: JSON.stringify(data) });
          }
          if (open) await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        clearInterval(keepalive);
        runner.off('round', onRound);
        runner.off('status', onStatus);
        runner.off('samples', onSamples);
        hub.off('joined', onMembership);
        hub.off('left', onMembership);
      }
    });
  });
}
