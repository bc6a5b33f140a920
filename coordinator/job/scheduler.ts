import { LIMITS } from '../../shared/protocol/messages.ts';
import { adaptiveDeadline, splitBySpeed } from '../../shared/schedule/schedule.ts';
import type { Verifier } from '../verification.ts';
import { noteAssignment, shareInput, type WorkerSession } from '../workers.ts';
import type { Job } from './job.ts';
import type { RoundSummary } from './round.ts';

/** Finish times the adaptive deadline learns from: enough for a stable median, recent enough to follow a fleet that changes. */
const FINISH_TIMES_KEPT = 64;

/** Who is in the next round: the workers and their verification copies, or why the round cannot open. */
export type Participants = { working: WorkerSession[]; copies: ReadonlyMap<string, string> } | { waiting: string };

/**
 * Plans rounds: who is in the next one, each worker's batch, and the
 * deadline. The math is in shared/schedule/schedule.ts; this class applies
 * the job's config to the workers at hand. It keeps no timers.
 */
export class RoundScheduler {
  /** Recent updates' finish times (assignment to arrival), for the adaptive deadline. */
  private readonly finishTimes: number[] = [];

  constructor(
    private readonly job: Job,
    private readonly verifier: Verifier,
    private readonly clock: () => number,
  ) {}

  /** The connected workers that take part in the next round, or why none can open yet. */
  participants(sessions: readonly WorkerSession[]): Participants {
    const workers = sessions.filter((session) => session.channel !== undefined);
    const { minWorkers } = this.job.config.training;
    if (workers.length < minWorkers) return { waiting: `waiting for workers: ${workers.length} connected, the job needs ${minWorkers}` };
    // Quarantined workers only copy others' assignments: with no one else here they rest.
    const plan = this.verifier.plan(workers.map((session) => session.id));
    const working = workers.filter((session) => !plan.resting.includes(session.id));
    if (working.length === 0) return { waiting: `waiting for workers: all ${workers.length} connected are quarantined` };
    return { working, copies: plan.copies };
  }

  /**
   * Each worker's batch for the next round: a round trains batchSize samples
   * per worker, split in proportion to the speed the coordinator measured so
   * all finish together, with no worker above training.maxWorkerShare of the
   * round and no batch growing faster than training.maxBatchGrowth per round
   * (or equally, when the config says so).
   */
  planBatches(workers: readonly WorkerSession[]): { id: string; batchSize: number }[] {
    const { batchSize: stepBatch, batching, mode, localSteps, maxWorkerShare, maxBatchGrowth } = this.job.config.training;
    // In local-update mode a worker takes localSteps steps of a batch each.
    const batchSize = mode === 'local' ? stepBatch * localSteps : stepBatch;
    const policy = { maxShare: maxWorkerShare, maxGrowth: maxBatchGrowth, minimum: 1 };
    const shares = batching === 'equal' ? workers.map(() => batchSize) : splitBySpeed(workers.map(shareInput), batchSize * workers.length, policy);
    const now = this.clock();
    return workers.map((session, i) => {
      const batch = Math.min(shares[i], LIMITS.maxBatch);
      // The round about to open is job.state.round; it is assigned in this same turn of the event loop.
      noteAssignment(session, this.job.state.round, batch, now);
      return { id: session.id, batchSize: batch };
    });
  }

  /** The next round's deadline: fixed, or learned from recent finish times. */
  nextDeadlineMs(): number {
    const { training } = this.job.config;
    if (training.deadline === 'fixed') return training.roundDeadlineMs;
    return adaptiveDeadline(this.finishTimes, { floorMs: training.deadlineFloorMs, ceilingMs: training.roundDeadlineMs, madFactor: 4, medianFactor: 1.5 });
  }

  /** Learns from a closed round's finish times. */
  roundClosed(summary: RoundSummary): void {
    for (const update of summary.updates) this.finishTimes.push(update.finishMs);
    if (this.finishTimes.length > FINISH_TIMES_KEPT) this.finishTimes.splice(0, this.finishTimes.length - FINISH_TIMES_KEPT);
  }
}
