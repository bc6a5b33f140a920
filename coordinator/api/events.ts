import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Hub } from '../hub.ts';
import type { JobEvents } from '../../shared/api/events.ts';
import type { JobStatus } from '../../shared/api/jobs.ts';
import type { QualityRow, RoundRow } from '../../shared/api/round-log.ts';
import { roundRow } from '../round-log.ts';
import type { RoundSummary } from '../job/round.ts';
import { describeWorker, type WorkerSession } from '../workers.ts';
import { errorBody } from './auth.ts';
import { describeJob } from './jobs.ts';
import { EventQueue } from './event-queue.ts';

/** Comment lines keep proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

/** Bounds of one reader's queue; its socket's own buffers come on top. */
export interface EventStreamLimits {
  /** Events waiting for one reader: at a round a second, two minutes of rounds. */
  maxQueuedEvents: number;
  /** Bytes waiting for one reader: a hundred rounds of a job with a few hundred workers. */
  maxQueuedBytes: number;
}

export const DEFAULT_EVENT_STREAM_LIMITS: EventStreamLimits = { maxQueuedEvents: 256, maxQueuedBytes: 1024 * 1024 };

/** The node-server bindings Hono's context carries on Node: the response, to cut a reader off. */
interface NodeBindings {
  outgoing?: { destroy(error?: Error): void };
}

/**
 * Live job events as Server-Sent Events: a `snapshot` first (the job, its
 * recent rounds and quality scorings), then `round`, `workers`, `status`,
 * `samples` and `quality` as they happen. One push per event, no polling. A reader that falls behind by more
 * than the limits is dropped (its connection closed; EventSource reconnects
 * and starts from a fresh snapshot), never buffered without end.
 */
export function addEventRoutes(app: Hono, hub: Hub, limits: EventStreamLimits = DEFAULT_EVENT_STREAM_LIMITS): void {
  app.get('/api/jobs/:id/events', (c) => {
    const runner = hub.runners.get(c.req.param('id'));
    if (!runner) return c.json(errorBody(new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(c.req.param('id'))}`, { field: 'id' })), 404);
    return streamSSE(c, async (stream) => {
      const queue = new EventQueue(limits.maxQueuedEvents, limits.maxQueuedBytes);
      let wake: (() => void) | undefined;
      let open = true;
      const drop = () => {
        open = false;
        wake?.();
        // The write in progress may wait for a reader that never reads: end the stream and its socket now.
        stream.abort();
        (c.env as NodeBindings | undefined)?.outgoing?.destroy();
      };
      const push = <Name extends keyof JobEvents>(event: Name, data: JobEvents[Name]) => {
        if (!open) return;
        if (!queue.push(event, JSON.stringify(data))) {
          drop();
          return;
        }
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
      const onStatus = (status: JobStatus) =>
        push('status', {
          status,
          round: runner.job.state.round,
          version: runner.job.state.version,
          ...(runner.diverged ? { diverged: runner.diverged.message } : {}),
        });
      const onSamples = (_path: string, round: number) =>
        push('samples', { round, url: `/api/jobs/${runner.job.config.id}/samples/latest.png?round=${round}` });
      const onQuality = (row: QualityRow) => push('quality', row);
      runner.on('round', onRound);
      runner.on('status', onStatus);
      runner.on('samples', onSamples);
      runner.quality.on('quality', onQuality);
      hub.on('joined', onMembership);
      hub.on('left', onMembership);
      const keepalive = setInterval(() => push('keepalive', {}), KEEPALIVE_MS);
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      push('snapshot', { job: describeJob(runner), rounds: runner.history.slice(-300), quality: runner.quality.history.slice(-300) });
      try {
        while (open) {
          let next = queue.shift();
          while (next && open) {
            await stream.writeSSE({ event: next.event, data: next.data });
            next = queue.shift();
          }
          if (open) await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        clearInterval(keepalive);
        runner.off('round', onRound);
        runner.off('status', onStatus);
        runner.off('samples', onSamples);
        runner.quality.off('quality', onQuality);
        hub.off('joined', onMembership);
        hub.off('left', onMembership);
      }
    });
  });
}
