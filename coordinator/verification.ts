import { EventEmitter } from 'node:events';
import type { DuplicateComparison, ExclusionReason } from '../shared/api/round-log.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import type { Assign } from '../shared/protocol/messages.ts';
import type { Job } from './job/job.ts';
import type { OpenRound, RoundSummary } from './job/round.ts';
import {
  applyTrust,
  banTrust,
  DEFAULT_TRUST_POLICY,
  initialTrust,
  releaseTrust,
  untouched,
  type TrustEvent,
  type TrustPolicy,
  type TrustState,
} from './trust.ts';
import { codecSlack, compareGradients } from './verification-compare.ts';
import { planCopies, type CopyPlan } from './verification-plan.ts';
import { trainerReferee } from './verification-referee.ts';

/** Recomputes an assignment on the coordinator: the referee of a disputed pair. */
export interface Referee {
  /** The gradient of `assign` at the weights whose f32 codec bytes are given. */
  recompute(assign: Assign, weights: Uint8Array): Promise<NamedArrays>;
  dispose(): void;
}

export interface VerifierOptions {
  /** Uniform values in [0, 1) that workers cannot predict (default: crypto.getRandomValues); tests pass a seeded stream. */
  random?: () => number;
  /** The referee of disputes; null for none (both sides of a dispute then get a soft mismatch). Default: the job's model on the coordinator. */
  referee?: Referee | null;
}

/** One comparison of a pair, in a round (the round log shows it without the round, in the round's row). */
export interface Verdict extends DuplicateComparison {
  round: number;
}

/** The referee's word on one side of a disputed pair. */
export interface Ruling {
  round: number;
  workerId: string;
  agrees: boolean;
  distance: number;
}

export interface VerifierEvents {
  verdict: [verdict: Verdict];
  ruling: [ruling: Ruling];
  /** A worker's trust changed. */
  trust: [workerId: string, state: TrustState];
  /** A worker went into quarantine or came out of it (state.quarantined says which). */
  quarantine: [workerId: string, state: TrustState];
}

/** Refusals that say nothing about honesty: late, resent after a reconnect, or the coordinator's own failure. */
const INNOCENT_REFUSALS = new Set<ErrorCode>([
  ErrorCode.WrongRound,
  ErrorCode.DuplicateUpdate,
  ErrorCode.IncompleteMessage,
  ErrorCode.JobNotRunning,
  ErrorCode.Internal,
]);
/** Disputes waiting for the referee at most: more are unresolved, so a flood of them cannot queue coordinator compute without bound. */
const MAX_PENDING_DISPUTES = 4;
/** Trust records kept at most (workers that come and go under fresh ids); the oldest unbanned ones go first. */
const MAX_RECORDS = 10_000;

function secureUniform(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0] / 4294967296;
}

/**
 * Verified contributions for one job: plans the duplicate assignments,
 * compares the pairs when a round closes, sends disputes to the referee off
 * the round's path, and keeps each worker's trust. The runner asks it who
 * works what, and which updates the aggregate leaves out.
 */
export class Verifier extends EventEmitter<VerifierEvents> {
  private readonly records = new Map<string, TrustState>();
  private readonly policy: TrustPolicy;
  private readonly random: () => number;
  private referee: Referee | null | undefined;
  private pending = 0;
  private disputes: Promise<void> = Promise.resolve();

  constructor(
    private readonly job: Job,
    options: VerifierOptions = {},
  ) {
    super();
    const { verification } = job.config.training;
    this.policy = { ...DEFAULT_TRUST_POLICY, quarantineBelow: verification.quarantineBelow, releaseAbove: verification.releaseAbove };
    this.random = options.random ?? secureUniform;
    this.referee = options.referee;
    for (const workerId of job.state.banned ?? []) this.records.set(workerId, banTrust(initialTrust(this.policy)));
  }

  trustOf(workerId: string): TrustState {
    return this.records.get(workerId) ?? initialTrust(this.policy);
  }

  /** How many workers are quarantined by their score, and banned, connected or not. */
  flagged(): { quarantined: number; banned: number } {
    let quarantined = 0;
    let banned = 0;
    for (const record of this.records.values()) {
      if (record.banned) banned += 1;
      else if (record.quarantined) quarantined += 1;
    }
    return { quarantined, banned };
  }

  /** True when the verifier holds a trust record for the worker (it was judged, quarantined or banned). */
  known(workerId: string): boolean {
    return this.records.has(workerId);
  }

  isBanned(workerId: string): boolean {
    return this.records.get(workerId)?.banned ?? false;
  }

  /**
   * Who copies whom in the next round. In local-update mode nothing is
   * copied: a worker's delta depends on its own inner optimizer state, so two
   * honest deltas of one assignment differ.
   */
  plan(workerIds: readonly string[]): CopyPlan {
    const workers = workerIds.map((id) => ({ id, quarantined: this.trustOf(id).quarantined, suspicion: suspicionOf(this.trustOf(id)) }));
    const { training } = this.job.config;
    if (training.mode === 'local') return { copies: new Map(), resting: workers.filter((worker) => worker.quarantined).map((worker) => worker.id) };
    return planCopies(workers, training.verification.duplicateShare, this.random);
  }

  /**
   * Compares the open round's pairs (the verdicts) and says which updates
   * the aggregate leaves out: quarantined workers' always; an agreeing copy
   * (the samples count once); both sides of a disagreeing pair of trusted
   * workers (the referee decides later who was wrong). A probe's original
   * counts whatever the quarantined copy sent: a quarantined worker cannot
   * veto anyone's work.
   */
  exclusions(round: OpenRound): { excluded: Map<string, ExclusionReason>; verdicts: Verdict[] } {
    const excluded = new Map<string, ExclusionReason>();
    const verdicts: Verdict[] = [];
    const tell = (verdict: Verdict) => {
      verdicts.push(verdict);
      this.emit('verdict', verdict);
    };
    for (const workerId of round.assignments.keys()) if (this.trustOf(workerId).quarantined) excluded.set(workerId, 'quarantined');
    for (const [copy, original] of round.copies) {
      const [first, second] = [round.updates.get(original), round.updates.get(copy)];
      if (!first || !second) continue;
      const comparison = this.compare(first.grads, second.grads, true);
      if (comparison.agree) {
        if (!excluded.has(original)) excluded.set(copy, excluded.get(copy) ?? 'duplicate');
        tell({ round: round.round, original, copy, outcome: 'agree', distance: comparison.distance, tensor: comparison.tensor });
        this.apply(original, { kind: 'agreement' });
        this.apply(copy, { kind: 'agreement' });
        continue;
      }
      if (excluded.get(copy) !== 'quarantined') {
        if (!excluded.has(original)) excluded.set(original, 'disputed');
        excluded.set(copy, 'disputed');
      }
      const outcome = this.dispute(round, original, copy, first.grads, second.grads);
      tell({ round: round.round, original, copy, outcome, distance: comparison.distance, tensor: comparison.tensor });
    }
    return { excluded, verdicts };
  }

  /** Sends a disagreeing pair to the referee, or, when none can take it, gives soft mismatches now. */
  private dispute(round: OpenRound, original: string, copy: string, first: NamedArrays, second: NamedArrays): Verdict['outcome'] {
    const assign = round.assignments.get(original)!.message;
    const weights = this.job.weightsByHash(assign.weightsHash);
    const referee = this.refereeOrNone();
    if (!referee || !weights || this.pending >= MAX_PENDING_DISPUTES) {
      this.unresolved(original, copy);
      return 'unresolved';
    }
    this.pending += 1;
    // Copies: the aggregation rule may clip the updates in place once the round closes.
    const sides = [
      [original, structuredClone(first)],
      [copy, structuredClone(second)],
    ] as const;
    this.disputes = this.disputes
      .then(async () => {
        const reference = await referee.recompute(assign, weights.bytes);
        for (const [workerId, grads] of sides) {
          const comparison = this.compare(reference, grads, false);
          this.emit('ruling', { round: round.round, workerId, agrees: comparison.agree, distance: comparison.distance });
          this.apply(workerId, { kind: comparison.agree ? 'agreement' : 'mismatch' });
        }
      })
      .catch(() => this.unresolved(original, copy))
      .finally(() => {
        this.pending -= 1;
      });
    return 'disputed';
  }

  /**
   * Two gradients of one assignment by the job's tolerance; the first went through the job's codec too, or is the
   * referee's own (exact). With error feedback each encoded side also carries its worker's residual.
   */
  private compare(first: NamedArrays, second: NamedArrays, firstEncoded: boolean) {
    const { training } = this.job.config;
    const slack = codecSlack(training.codec, { errorFeedback: training.errorFeedback });
    return compareGradients(first, second, training.verification.tolerance, {
      slackA: firstEncoded ? slack : undefined,
      slackB: slack,
      networkOf: this.job.spec.networkOf,
    });
  }

  /** No referee could say who was wrong: both pay a little, or only the quarantined side when one is (it must not drag the other down). */
  private unresolved(original: string, copy: string): void {
    const suspects = [original, copy].filter((id) => this.trustOf(id).quarantined);
    for (const workerId of suspects.length === 1 ? suspects : [original, copy]) this.apply(workerId, { kind: 'soft-mismatch' });
  }

  /** The round's evidence: each aggregated update, flagged by the robust rule as an outlier or not. */
  observe(summary: RoundSummary): void {
    const flagged = new Set(summary.outliers.map((outlier) => outlier.workerId));
    for (const update of [...summary.updates, ...summary.late]) this.apply(update.workerId, { kind: 'round', outlier: flagged.has(update.workerId) });
  }

  /** An update of this worker was refused by the job. */
  refused(workerId: string, code: ErrorCode): void {
    if (!INNOCENT_REFUSALS.has(code)) this.apply(workerId, { kind: 'refusal' });
  }

  /** An admin's release: a new worker's score, no quarantine, no ban. */
  release(workerId: string): TrustState {
    this.job.state.banned = this.job.state.banned?.filter((id) => id !== workerId);
    return this.set(workerId, releaseTrust(this.trustOf(workerId), this.policy));
  }

  /** An admin's ban: quarantined for good; the hub refuses its id, also after a restart (the ban goes into the job state and its checkpoints). */
  ban(workerId: string): TrustState {
    this.job.state.banned = [...new Set([...(this.job.state.banned ?? []), workerId])];
    return this.set(workerId, banTrust(this.trustOf(workerId)));
  }

  /** The worker left: a record with nothing in it is dropped (sessions come and go; evidence stays). */
  forget(workerId: string): void {
    const record = this.records.get(workerId);
    if (record && untouched(record, this.policy)) this.records.delete(workerId);
  }

  /** Resolves once every dispute sent so far has its ruling (tests, shutdown). */
  settled(): Promise<void> {
    return this.disputes;
  }

  dispose(): void {
    this.referee?.dispose();
  }

  private refereeOrNone(): Referee | null {
    if (this.referee === undefined) this.referee = trainerReferee(this.job);
    return this.referee;
  }

  private apply(workerId: string, event: TrustEvent): void {
    this.set(workerId, applyTrust(this.trustOf(workerId), event, this.policy));
  }

  private set(workerId: string, state: TrustState): TrustState {
    const wasQuarantined = this.trustOf(workerId).quarantined;
    this.records.delete(workerId);
    this.records.set(workerId, state);
    if (this.records.size > MAX_RECORDS) {
      // Oldest first: set() moves a record to the end, so the first unbanned one changed least recently.
      for (const [id, record] of this.records) {
        if (record.banned) continue;
        this.records.delete(id);
        break;
      }
    }
    this.emit('trust', workerId, state);
    if (state.quarantined !== wasQuarantined) this.emit('quarantine', workerId, state);
    return state;
  }
}

/** Outlier rates up to this raise no suspicion: an honest worker runs at 0.1 to 0.3 under centered-clip (the smallest batch of a clean run). */
const ORDINARY_OUTLIER_RATE = 0.25;

/**
 * How much speaks against a worker, 0 to 1: its assignment is duplicated at
 * least this often. Twice the trust it lost (one confirmed mismatch, 0.4, gets
 * it checked in 4 of its next 5 rounds), or its recent outlier rate above the
 * ordinary, rescaled to [0, 1], when higher: a worker the robust rule flags
 * every round is checked within a few rounds (0.2 after 5 flags, 0.4 after 8),
 * long before the flags themselves cost it trust (only above an 80% rate),
 * while honest workers, flagged now and then, cost few extra duplicates.
 */
export function suspicionOf(trust: TrustState): number {
  const outliers = Math.max(0, (trust.outlierRate - ORDINARY_OUTLIER_RATE) / (1 - ORDINARY_OUTLIER_RATE));
  return Math.min(1, Math.max(2 * (1 - trust.score), outliers));
}
