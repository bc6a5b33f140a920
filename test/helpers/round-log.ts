import { existsSync, readFileSync } from 'node:fs';
import { parseRoundLog, type QualityRow, type RoundRow } from '../../coordinator/round-log.ts';

/** The round lines of a round log (its quality lines left out); [] while the file does not exist. */
export function readRounds<Round = RoundRow>(path: string): Round[] {
  return existsSync(path) ? (parseRoundLog(readFileSync(path, 'utf8')).rounds as Round[]) : [];
}

/** The quality lines of a round log; [] while the file does not exist. */
export function readQuality(path: string): QualityRow[] {
  return existsSync(path) ? parseRoundLog(readFileSync(path, 'utf8')).quality : [];
}
