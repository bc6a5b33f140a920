import type { QualityRow, RoundLogLine, RoundRow } from '../../shared/api/round-log.ts';
import { roundRow } from '../round-log.ts';
import type { JobStore } from '../store/job-store.ts';
import type { Verdict } from '../verification.ts';
import type { RoundSummary } from './round.ts';

/** Rounds kept in memory for the dashboard's charts (the full log is in the job's store). */
const HISTORY_ROUNDS = 2000;

/**
 * Writes the round log (format in ../round-log.ts) to the job's store
 * (rounds.jsonl in a folder, or a JetStream stream): one line per closed
 * round, who contributed what, who missed it and why, and the quality
 * lines. Lines go through `enqueue`, the job's one queue of output writes,
 * so they land in order with the checkpoints and samples.
 */
export class RoundLogWriter {
  /** The most recent rounds, oldest first. */
  readonly history: RoundRow[] = [];

  constructor(
    private readonly store: JobStore,
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
    const text = JSON.stringify(line);
    this.enqueue(() => this.store.appendRounds([text]));
  }
}
