import type { Job } from './job.ts';
import type { OpenRound } from './round.ts';

/**
 * The open round's deadline timer. At the deadline the round closes with what
 * has arrived. With nothing arrived yet, closing would only throw the
 * workers' work away (and a worker slower than the learned deadline would
 * never catch up): the round then closes at the first update, or at
 * roundDeadlineMs, whichever comes first.
 */
export class RoundDeadline {
  private timer: NodeJS.Timeout | undefined;
  /** The open round's deadline passed with no update: it closes at the first one. */
  private passed = false;

  constructor(
    private readonly job: Job,
    private readonly clock: () => number,
    private readonly closeRound: () => void,
  ) {}

  /** Starts the timer of the round just opened. */
  start(round: OpenRound): void {
    this.timer = setTimeout(() => this.reached(), Math.max(0, round.deadlineAt - this.clock()));
  }

  /** True when the deadline passed and an update has since come: the round closes now. */
  overdue(): boolean {
    return this.passed && (this.job.current?.updates.size ?? 0) > 0;
  }

  /** The round closed: its timer is no longer needed. */
  roundClosed(): void {
    clearTimeout(this.timer);
    this.passed = false;
  }

  /** Stops the timer (the coordinator shuts down). */
  stop(): void {
    clearTimeout(this.timer);
  }

  private reached(): void {
    const round = this.job.current;
    if (!round) return;
    const ceilingAt = round.startedAt + this.job.config.training.roundDeadlineMs;
    if (round.updates.size > 0 || round.late.length > 0 || this.clock() >= ceilingAt) {
      this.closeRound();
      return;
    }
    this.passed = true;
    this.timer = setTimeout(() => this.closeRound(), Math.max(0, ceilingAt - this.clock()));
  }
}
