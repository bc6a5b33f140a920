import { stalenessWeight } from '../../shared/schedule/schedule.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import type { TrainingConfig } from '../../shared/api/job-config.ts';
import type { AcceptedUpdate, Assignment, OpenRound } from './round.ts';
import { checkContent, checkWeightsHash, type ContentRules } from './update-checks.ts';

/** Rounds a late update may still name: a few more than any maxStaleness in use. */
const MISSED_ROUNDS_KEPT = 8;

/**
 * Assignments of recently closed rounds whose update never came
 * (training.lateUpdates = 'stale'), so a late update can still be placed in
 * the open round, with its weight discounted per version it is behind, and
 * only once.
 */
export class LateUpdates {
  /** Keyed `${workerId}/${round}`. */
  private readonly missed = new Map<string, { assignment: Assignment; version: number }>();

  constructor(
    private readonly training: TrainingConfig,
    private readonly rules: ContentRules,
  ) {}

  /** Checks an update for a round that closed without it and adds it to the open `round`'s late updates. */
  accept(workerId: string, update: Update, round: OpenRound, now: number): AcceptedUpdate {
    const key = `${workerId}/${update.round}`;
    const missed = this.missed.get(key);
    if (!missed)
      throw new TesseraError(ErrorCode.WrongRound, `round ${update.round} closed and has no missing update from worker ${workerId}`, { field: 'round' });
    if (update.version !== missed.version)
      throw new TesseraError(ErrorCode.StaleVersion, `round ${update.round} trained version ${missed.version}, not ${update.version}`, { field: 'version' });
    checkWeightsHash(update, missed.assignment);
    const { maxStaleness, stalenessDecay } = this.training;
    const behind = round.version - missed.version;
    if (behind > maxStaleness) {
      this.missed.delete(key);
      throw new TesseraError(ErrorCode.StaleVersion, `${behind} versions behind, more than training.maxStaleness ${maxStaleness}`, { field: 'version' });
    }
    const accepted = checkContent(this.rules, workerId, update, missed.assignment, now, stalenessWeight(update.samples, behind, stalenessDecay));
    this.missed.delete(key);
    round.late.push(accepted);
    return accepted;
  }

  /** The assignments of `workerId` a late update may still fill. */
  of(workerId: string): Assignment[] {
    return [...this.missed].filter(([key]) => key.startsWith(`${workerId}/`)).map(([, { assignment }]) => assignment);
  }

  /** Keeps the assignments a closed round never got an update for, so a late one can still be placed (and only once). */
  remember(round: OpenRound): void {
    if (this.training.lateUpdates !== 'stale') return;
    // A copy's samples count once: a late copy is never placed, nor a late original whose copy arrived.
    const coveredByCopy = new Set([...round.copies].filter(([copy]) => round.updates.has(copy)).map(([, original]) => original));
    for (const [workerId, assignment] of round.assignments) {
      if (round.copies.has(workerId) || coveredByCopy.has(workerId)) continue;
      if (!round.updates.has(workerId)) this.missed.set(`${workerId}/${round.round}`, { assignment, version: round.version });
    }
    for (const key of this.missed.keys()) {
      if (Number(key.slice(key.lastIndexOf('/') + 1)) < round.round - MISSED_ROUNDS_KEPT) this.missed.delete(key);
    }
  }
}
