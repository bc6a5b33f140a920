import type { Worker } from 'node:worker_threads';
import type { QualityReport } from '../../shared/eval/report.ts';
import { startTypeScriptThread } from '../../runtime/node/typescript-thread.ts';
import type { ScoreReply, ScoreRequest } from './thread-protocol.ts';

/** What the coordinator asks of a scorer: the request without its id. */
export type ScoreJob = Omit<ScoreRequest, 'type' | 'id'>;

/** Scores sample quality somewhere off the coordinator's event loop (ScoringThread; unit tests pass their own). */
export interface Scorer {
  /** Takes what it needs of `job.weights` before returning: the job steps them on. */
  score(job: ScoreJob): Promise<QualityReport>;
  close(): Promise<void>;
}

/**
 * A worker_thread with its own tfjs that scores one request at a time
 * (coordinator/quality/thread-entry.ts). Started at the first request; a
 * thread that dies is started again at the next one.
 */
export class ScoringThread implements Scorer {
  private worker: Worker | undefined;
  private nextId = 0;
  private pending: { id: number; resolve(report: QualityReport): void; reject(error: Error): void } | undefined;

  /** Scores in the thread, one request at a time. The weights are copied before it returns: the caller may change them at once. */
  score(job: ScoreJob): Promise<QualityReport> {
    if (this.pending) return Promise.reject(new Error('the scoring thread is busy'));
    const worker = (this.worker ??= this.start());
    // Copies with buffers of their own, moved to the thread rather than cloned: the job's arrays stay, and nothing is copied twice.
    const weights = Object.fromEntries(Object.entries(job.weights).map(([name, array]) => [name, array.slice()]));
    const request: ScoreRequest = { type: 'score', id: ++this.nextId, ...job, weights };
    return new Promise((resolve, reject) => {
      this.pending = { id: request.id, resolve, reject };
      worker.postMessage(
        request,
        Object.values(weights).map((array) => array.buffer),
      );
    });
  }

  /** Ends the thread; a request in flight fails. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.settle(new Error('the scoring thread was closed'));
    await worker?.terminate();
  }

  private start(): Worker {
    const worker = startTypeScriptThread(new URL('./thread-entry.ts', import.meta.url));
    // A scoring in flight must not keep a coordinator that is done from exiting.
    worker.unref();
    worker.on('message', (reply: ScoreReply) => {
      if (reply.id !== this.pending?.id) return;
      if (reply.type === 'scored') this.settle(undefined, reply.report);
      else this.settle(new Error(reply.message));
    });
    const lost = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      this.settle(error);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the scoring thread exited (code ${code})`)));
    return worker;
  }

  private settle(error: Error | undefined, report?: QualityReport): void {
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    if (error) pending.reject(error);
    else pending.resolve(report!);
  }
}
