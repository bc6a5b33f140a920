import { StreamingMean } from '../shared/aggregate/streaming-mean.ts';
import { sumBytes, type FoldedUpdate, type PartialMessage, type PlanAssignment, type RefusedUpdate, type RoundPlan } from '../shared/protocol/aggregation.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import type { Update } from '../shared/protocol/messages.ts';
// The coordinator's own checks, called as they are so an aggregator refuses exactly what the coordinator would.
import { checkContent, checkOnTime } from '../coordinator/job/update-checks.ts';
import { networkNorm, networkTensors } from '../coordinator/job/round-fold.ts';
import type { OpenRound } from '../coordinator/job/round.ts';

/** What judging an update came to: folded, or refused with the error the worker is told. */
export type Verdict = { folded: true } | { folded: false; error: TesseraError };

/**
 * One aggregator's part of one round: the updates of the workers the plan
 * gives it are checked against their assignments, as the coordinator checks
 * them, and folded into one StreamingMean per network (shares and radii from
 * the whole round's assignments, so every aggregator weighs an update as the
 * coordinator would). Memory is O(parameters) however many workers: an
 * update's tensors are dropped once folded. No I/O, no timers.
 */
export class RoundFold {
  readonly round: number;
  private readonly open: OpenRound;
  private readonly byConnection = new Map<string, PlanAssignment>();
  private readonly means: Record<string, StreamingMean> = {};
  private readonly namesOf = new Map<string, string[]>();
  private readonly accepted: FoldedUpdate[] = [];
  private readonly refused: RefusedUpdate[] = [];
  /** The partial was taken: later updates of this round go to the coordinator unfolded. */
  sealed = false;

  constructor(
    readonly plan: RoundPlan,
    readonly aggregatorId: string,
    now: number,
  ) {
    this.round = plan.round;
    const owned = plan.assignments.filter((entry) => entry.owner === aggregatorId && entry.assign && entry.connectionId);
    const version = owned[0]?.assign?.version ?? 0;
    this.open = {
      round: plan.round,
      version,
      startedAt: now,
      deadlineAt: now + plan.deadlineMs,
      assignments: new Map(owned.map((entry) => [entry.workerId, { workerId: entry.workerId, message: entry.assign!, assignedAt: now }])),
      updates: new Map(),
      failures: new Map(),
      late: [],
      copies: new Map(),
    };
    for (const entry of plan.assignments) if (entry.connectionId && entry.owner) this.byConnection.set(entry.connectionId, entry);
    if (!plan.fold) return;
    const assigned = new Map(plan.assignments.map((entry) => [entry.workerId, entry.samples]));
    const { job } = plan;
    for (const [name, network] of Object.entries(job.networkOf)) this.namesOf.set(network, [...(this.namesOf.get(network) ?? []), name]);
    for (const [network, names] of this.namesOf) {
      const lengths = Object.fromEntries(names.map((name) => [name, job.shapes[name].reduce((a, b) => a * b, 1)]));
      this.means[network] = new StreamingMean(lengths, assigned, { maxShare: job.maxShare, clipNorm: job.clipNorm, tau: job.tau[network] ?? 0 });
    }
  }

  /** The aggregator that owns a worker connection's messages this round, if one does. */
  ownerOf(connectionId: string): string | undefined {
    return this.byConnection.get(connectionId)?.owner;
  }

  /** The worker id of a connection this aggregator folds, if it folds this round. */
  foldsFor(connectionId: string): string | undefined {
    const entry = this.byConnection.get(connectionId);
    return this.plan.fold && !this.sealed && entry?.owner === this.aggregatorId ? entry.workerId : undefined;
  }

  /** Checks one update of this round from `workerId` and folds it, or says why not. */
  judge(workerId: string, update: Update, now: number): Verdict {
    try {
      if (update.jobId !== this.plan.jobId)
        throw new TesseraError(ErrorCode.UnknownJob, `update for job ${update.jobId} sent to job ${this.plan.jobId}`, { field: 'jobId' });
      const assignment = checkOnTime(this.open, workerId, update);
      const { job } = this.plan;
      const accepted = checkContent(
        { lossNames: job.lossNames, shapes: job.shapes, maxGradNorm: job.maxGradNorm },
        workerId,
        update,
        assignment,
        now,
        update.samples,
      );
      const clippedNetworks: string[] = [];
      let deviation = 0;
      for (const [network, names] of this.namesOf) {
        const verdict = this.means[network].add(workerId, networkTensors(accepted, names), networkNorm(accepted, names));
        if (verdict.clipped) clippedNetworks.push(network);
        deviation = Math.max(deviation, verdict.deviation);
      }
      // Kept for the duplicate check, without its tensors.
      this.open.updates.set(workerId, { ...accepted, grads: {} });
      const folded: FoldedUpdate = {
        workerId,
        samples: accepted.samples,
        losses: accepted.losses,
        computeMs: accepted.computeMs,
        fetchMs: accepted.fetchMs,
        finishMs: accepted.finishMs,
        bytes: accepted.bytes,
        clippedNetworks,
        deviation,
      };
      if (accepted.workerTensors !== undefined) folded.workerTensors = accepted.workerTensors;
      this.accepted.push(folded);
      return { folded: true };
    } catch (failure) {
      const error = failure instanceof TesseraError ? failure : new TesseraError(ErrorCode.Internal, String(failure));
      // As the coordinator does: a refused update is the worker's answer for the round (a duplicate refuses only itself).
      if (this.open.assignments.has(workerId) && !this.open.updates.has(workerId) && !this.open.failures.has(workerId)) {
        this.open.failures.set(workerId, { workerId, code: error.code, message: error.message });
        const refused: RefusedUpdate = { workerId, code: error.code, message: error.message };
        if (error.field !== undefined) refused.field = error.field;
        this.refused.push(refused);
      }
      return { folded: false, error };
    }
  }

  /** Workers the coordinator counts as gone: nothing more is waited for from them. */
  markFailed(workerIds: readonly string[]): void {
    for (const workerId of workerIds) {
      if (this.open.assignments.has(workerId) && !this.open.updates.has(workerId) && !this.open.failures.has(workerId))
        this.open.failures.set(workerId, { workerId, code: 'LEFT', message: 'gone, as the coordinator says' });
    }
  }

  /** Every owned worker has been folded, refused or reported gone. */
  get complete(): boolean {
    return this.open.updates.size + this.open.failures.size >= this.open.assignments.size;
  }

  /** Updates judged so far (folded or refused): a partial of none need not be sent. */
  get judged(): number {
    return this.accepted.length + this.refused.length;
  }

  /** The partial for the coordinator; seals the round here. */
  partial(): PartialMessage {
    this.sealed = true;
    const sums: Record<string, Uint8Array> = {};
    const networks: PartialMessage['networks'] = {};
    for (const [network, mean] of Object.entries(this.means)) {
      const state = mean.state();
      for (const [name, sum] of Object.entries(state.sums)) sums[name] = sumBytes(sum);
      networks[network] = { share: state.share, scaledNorms: state.scaledNorms, foldedShares: state.foldedShares };
    }
    return {
      type: 'partial',
      jobId: this.plan.jobId,
      round: this.round,
      aggregatorId: this.aggregatorId,
      sums,
      networks,
      accepted: this.accepted,
      refused: this.refused,
    };
  }
}
