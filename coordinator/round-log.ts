import * as tf from '@tensorflow/tfjs';
import type { RoundSummary } from './job/round.ts';
import type { QualityReport } from '../shared/eval/report.ts';
import type { Verdict } from './verification.ts';

/*
 * The round log (rounds.jsonl) holds one JSON object per line, of two kinds:
 * a closed round (a RoundRow: no `kind` key, as every line was before quality
 * lines existed), and `kind: "quality"`, the sample quality of the sampling
 * weights after a round, written when its background scoring finished (so it
 * may come a few rounds after the round it names). Readers that want rounds
 * skip the lines with a kind.
 */

/** The round log's file name, in the job's output folder. */
export const ROUND_LOG = 'rounds.jsonl';

/** A closed round as the round log, the API and the dashboard show it. */
export interface RoundRow {
  round: number;
  version: number;
  applied: boolean;
  durationMs: number;
  samples: number;
  samplesPerSecond: number;
  losses: Record<string, number>;
  updates: { workerId: string; samples: number; computeMs: number; finishMs: number; bytes: number; shards: number; workerTensors?: number }[];
  /** Live tfjs tensors on the coordinator when the round closed (leak watch). */
  coordinatorTensors: number;
  /** Late updates of earlier rounds applied here, with their discounted weight. */
  late: { workerId: string; round: number; samples: number; weight: number }[];
  /** How long this round would wait at most. */
  deadlineMs: number;
  failures: RoundSummary['failures'];
  /** Accepted updates the aggregate left out: verification copies, disputed pairs, quarantined workers. */
  excluded: RoundSummary['excluded'];
  /** The round's duplicate pairs as compared (the referee's rulings come later, in the coordinator's log and metrics). */
  verification: Omit<Verdict, 'round'>[];
  /** Updates the aggregation rules flagged, with their distance to the result in clip radii. */
  outliers: RoundSummary['outliers'];
  closedAt: string;
}

/** A round summary as its round-log line. */
export function roundRow(summary: RoundSummary, now: number, verdicts: readonly Verdict[] = []): RoundRow {
  return {
    round: summary.round,
    version: summary.version,
    applied: summary.applied,
    durationMs: Math.round(summary.durationMs),
    samples: summary.samples,
    samplesPerSecond: summary.samplesPerSecond,
    losses: summary.losses,
    updates: summary.updates.map((update) => ({
      workerId: update.workerId,
      samples: update.samples,
      computeMs: Math.round(update.computeMs),
      finishMs: Math.round(update.finishMs),
      bytes: update.bytes,
      shards: update.shardIds.length,
      workerTensors: update.workerTensors,
    })),
    coordinatorTensors: tf.memory().numTensors,
    late: summary.late.map((update) => ({ workerId: update.workerId, round: update.round, samples: update.samples, weight: update.weight })),
    deadlineMs: summary.deadlineMs,
    failures: summary.failures,
    excluded: summary.excluded,
    verification: verdicts.map(({ round: _round, ...verdict }) => ({ ...verdict, distance: Number(verdict.distance.toPrecision(3)) })),
    outliers: summary.outliers.map((outlier) => ({ ...outlier, deviation: Number(outlier.deviation.toPrecision(3)) })),
    closedAt: new Date(now).toISOString(),
  };
}

/** A quality line: the QualityReport of the weights of `version`, scored after `round` closed. */
export interface QualityRow extends QualityReport {
  kind: 'quality';
  /** The round whose closing made the scoring due. */
  round: number;
  /** The weights version scored (training steps taken). */
  version: number;
  samplesSeen: number;
  /** Wall time from the job's first round to the weights scored (a restart's downtime included). */
  wallMs: number;
  /** When the weights scored were current: the round's close, as a round row's closedAt. */
  closedAt: string;
}

/** Any line of the round log. */
export type RoundLogLine = RoundRow | QualityRow;

/** True for a quality line. */
export function isQualityRow(line: unknown): line is QualityRow {
  return typeof line === 'object' && line !== null && (line as { kind?: unknown }).kind === 'quality';
}

/** The round log's text split by kind; lines that do not parse are skipped (a line cut short by a crash). */
export function parseRoundLog(text: string): { rounds: RoundRow[]; quality: QualityRow[] } {
  const rounds: RoundRow[] = [];
  const quality: QualityRow[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    if (isQualityRow(value)) quality.push(value);
    else if (typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === undefined) rounds.push(value as RoundRow);
  }
  return { rounds, quality };
}
