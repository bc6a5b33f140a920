import * as tf from '@tensorflow/tfjs';
import type { QualityRow, RoundRow } from '../shared/api/round-log.ts';
import type { RoundSummary } from './job/round.ts';
import type { Verdict } from './verification.ts';

/*
 * Writing and reading the round log (rounds.jsonl): its lines' types, and
 * what each kind means, are in shared/api/round-log.ts, which the API and the
 * dashboard read too.
 */

/** The round log's file name, in the job's output folder. */
export const ROUND_LOG = 'rounds.jsonl';

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
