import { median } from '../shared/schedule/schedule.ts';
import { samplesPerSecondAt, stepMs, type StepTime } from '../shared/worker/model-speed.ts';

/**
 * Whether this tab should take work at all: pure policy over what the tab
 * measured of itself and what the job says of its rounds. A round waits for
 * every worker it assigned, up to its deadline: a tab slower than the round's
 * pace makes every round as long as its own share takes, and a tab slower
 * than the deadline holds every round to the deadline and then has its
 * update thrown away. Such a tab watches instead. The coordinator sizes the
 * shares; the tab can only decline them.
 */

/** What a newcomer meets in this job. */
export interface JobPace {
  /** Samples a newcomer gets in its first round: the job's per-worker batch (× local steps in local-update mode). */
  firstShare: number;
  /** How long a round waits for an update: the last round's deadline, or the job's ceiling before any round ran. */
  deadlineMs: number;
  /** How long rounds take now (median of the recent ones that applied), when there are any. */
  roundMs: number | undefined;
}

/** A newcomer may take this much longer than the rounds take now: the slack the job's rounds already show. */
export const ROUND_SLACK = 1.2;
/** The part of the deadline a newcomer may plan to use: the rest is margin for a busy moment. */
export const DEADLINE_SHARE = 0.8;
/** Recent rounds the pace is the median of. */
export const PACE_ROUNDS = 20;

export interface Verdict {
  join: boolean;
  /** This tab's expected time from assignment to update for the first share: transfers and compute. */
  predictedMs: number;
  /** Its compute speed at that share. */
  samplesPerSecond: number;
  /** Plain words for the page. */
  reason: string;
}

/** The job description fields the pace is read from (GET /api/jobs/:id and /rounds). */
export interface JobDescription {
  config: { training: { batchSize: number; mode?: string; localSteps?: number; roundDeadlineMs: number } };
  lastRound: { deadlineMs: number } | null;
}

/** The pace a newcomer meets, from the job and its recent rounds (oldest first). */
export function paceOf(job: JobDescription, rounds: readonly { durationMs: number; applied: boolean }[] = []): JobPace {
  const { training } = job.config;
  const firstShare = training.mode === 'local' ? training.batchSize * (training.localSteps ?? 1) : training.batchSize;
  const recent = rounds
    .filter((round) => round.applied)
    .slice(-PACE_ROUNDS)
    .map((round) => round.durationMs);
  return { firstShare, deadlineMs: job.lastRound?.deadlineMs ?? training.roundDeadlineMs, roundMs: recent.length > 0 ? median(recent) : undefined };
}

/** `0.24 s`, `1.6 s`, `32 s`: two significant digits or so, for the reasons shown on the page. */
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 1000 ? 2 : ms < 10_000 ? 1 : 0)} s`;

/**
 * Joins when the first share, with `overheadMs` of transfers per round
 * (fetching the weights, encoding the update, as measured), finishes within
 * the rounds' current pace (with slack) and well before the deadline;
 * otherwise says why in words.
 */
export function judgeSpeed(time: StepTime, pace: JobPace, overheadMs = 0): Verdict {
  const predictedMs = overheadMs + stepMs(time, pace.firstShare);
  const samplesPerSecond = samplesPerSecondAt(time, pace.firstShare);
  if (predictedMs <= budgetMs(pace)) {
    const paceWords = pace.roundMs === undefined ? '' : `rounds take ${seconds(pace.roundMs)} now and `;
    return {
      join: true,
      predictedMs,
      samplesPerSecond,
      reason: `fast enough: ${pace.firstShare} samples in about ${seconds(predictedMs)}${transfersOf(overheadMs)}; ${paceWords}a round waits up to ${seconds(pace.deadlineMs)}`,
    };
  }
  const need = `this device would need about ${seconds(predictedMs)}${transfersOf(overheadMs)} for the ${pace.firstShare} samples a new worker gets`;
  if (predictedMs > pace.deadlineMs * DEADLINE_SHARE) {
    return {
      join: false,
      predictedMs,
      samplesPerSecond,
      reason: `${need}, and a round waits only ${seconds(pace.deadlineMs)}: it watches instead of holding every round back`,
    };
  }
  return {
    join: false,
    predictedMs,
    samplesPerSecond,
    reason: `${need}, and rounds take ${seconds(pace.roundMs!)} now: it watches instead of making every round wait for it`,
  };
}

/** The time a newcomer's first share may take: within the rounds' pace (with slack) and well before the deadline. */
export function budgetMs(pace: JobPace): number {
  return Math.min(pace.deadlineMs * DEADLINE_SHARE, pace.roundMs === undefined ? Infinity : pace.roundMs * ROUND_SLACK);
}

const transfersOf = (overheadMs: number) => (overheadMs > 0 ? ` (${seconds(overheadMs)} of it fetching weights and sending the update)` : '');

/**
 * A spectator checks its speed again after a while (the device may be less
 * busy, the job's rounds longer): first after a minute, doubled after each
 * check or late update that kept it watching, up to the cap, so a device on
 * the edge holds back at most a round or two per long while.
 */
export const RECHECK_FIRST_MS = 60_000;
export const RECHECK_MAX_MS = 15 * 60_000;

/** The wait before the next check, after `attempts` checks that kept the tab watching. */
export function recheckDelayMs(attempts: number): number {
  return Math.min(RECHECK_MAX_MS, RECHECK_FIRST_MS * 2 ** attempts);
}
