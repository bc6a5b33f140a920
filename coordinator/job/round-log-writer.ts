import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { QualityRow, RoundLogLine, RoundRow } from '../../shared/api/round-log.ts';
import { roundRow } from '../round-log.ts';
import type { Verdict } from '../verification.ts';
import type { RoundSummary } from './round.ts';

/** Rounds kept in memory for the dashboard's charts (the full log is on disk). */
const HISTORY_ROUNDS = 2000;

/**
 * Writes the round log (rounds.jsonl, format in ../round-log.ts): one line
 * per closed round, who contributed what, who missed it and why, and the
 * quality lines. Lines go through `enqueue`, the job's one queue of output
 * writes, so they land in order with the checkpoints and samples.
 */
export class RoundLogWriter {
  /** The most recent rounds, oldest first. */
  readonly history: RoundRow[] = [];

  constructor(
    private readonly path: string,
    private readonly enqueue: (write: () => Promise<void>) => void,
    private readonly clock: () => number,
  ) {}

  /** A closed round's line, with its duplicate pairs as compared. */
  roundClosed(summary: RoundSummary, verdicts: readonly Verdict[]): void {
    const row = roundRow(summary, this.clock(), verdicts);
    this.history.push(row);
    if (this.history.length > HISTORY_ROUNDS) this.history.splice(0, this.history.length - HISTORY_ROUNDS);
    this.append(row);
  }

  /** A quality line, when the background scoring of a round's weights finished. */
  quality(row: QualityRow): void {
    this.append(row);
  }

  private append(line: RoundLogLine): void {
    const text = `${JSON.stringify(line)}\n`;
    this.enqueue(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      await appendFile(this.path, text);
    });
  }
}
