import { existsSync, readFileSync } from 'node:fs';
import { parseRoundLog } from '../../coordinator/round-log.ts';
import type { QualityRow, RoundRow } from '../../shared/api/round-log.ts';
import { until } from './processes.ts';

/** The round lines of a round log (its quality lines left out); [] while the file does not exist. */
export function readRounds<Round = RoundRow>(path: string): Round[] {
  return existsSync(path) ? (parseRoundLog(readFileSync(path, 'utf8')).rounds as Round[]) : [];
}

/** The quality lines of a round log; [] while the file does not exist. */
export function readQuality(path: string): QualityRow[] {
  return existsSync(path) ? parseRoundLog(readFileSync(path, 'utf8')).quality : [];
}

/** Waits for `count` rounds in a job's round log; returns them with every worker that took part (its update applied or excluded). */
export async function waitForRounds(path: string, count: number, timeoutMs: number): Promise<{ rounds: RoundRow[]; workers: Set<string> }> {
  const rounds = await until(
    () => readRounds(path),
    (rows) => rows.length >= count,
    timeoutMs,
    `${count} rounds`,
  );
  const workers = new Set(rounds.flatMap((row) => [...row.updates, ...row.excluded].map((update) => update.workerId)));
  return { rounds, workers };
}
