import { isChunk, Reassembler } from '../../shared/codec/chunking.ts';
import { pack } from '../../shared/codec/packr.ts';
import { decodeUntrusted } from '../../shared/codec/untrusted.ts';
import {
  AGGREGATION_PROTOCOL,
  AGGREGATOR_SILENCE_MS,
  MAX_AGGREGATORS,
  aggregatorBudget,
  parseAggregatorMessage,
  type PartialMessage,
} from '../../shared/protocol/aggregation.ts';
import { isTesseraError } from '../../shared/protocol/errors.ts';
import { subjects } from '../../shared/protocol/subjects.ts';
import type { Hub } from '../hub.ts';
import { addPartial } from '../job/round-fold.ts';
import type { JobRunner } from '../job/runner.ts';
import type { AggregationPort } from '../transports/nats.ts';
import { planRound } from './plan.ts';

/** How often silent aggregators are looked for and stalled partials dropped. */
const SWEEP_MS = 500;

/**
 * The coordinator's side of aggregator processes for one job
 * (docs/aggregators.md): it knows which aggregators live
 * (their hellos), steps out of the workers' queue group while any does and
 * back in when none is left, publishes each round's plan before its
 * assignments leave, adds the partials to the round, and, when an
 * aggregator falls silent mid-round, counts the workers it owned as failed
 * so the round closes as it does for a dead worker.
 */
export class AggregatorLink {
  /** Live aggregators by id: when each was last heard. */
  private readonly live = new Map<string, number>();
  private plan: Uint8Array | undefined;
  private readonly reassembler: Reassembler;
  private readonly maxPartialBytes: number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly detach: () => void;

  constructor(
    private readonly port: AggregationPort,
    private readonly runner: JobRunner,
    private readonly hub: Hub,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    const { job } = runner;
    const jobId = job.config.id;
    const parameters = Object.values(job.shapes).reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);
    // The float64 sums, and a few hundred bytes per worker of the largest fleet a round can hold.
    this.maxPartialBytes = 8 * parameters + 512 * 65_536 + 64 * 1024;
    this.reassembler = new Reassembler(this.maxPartialBytes, { maxTotalBytes: 4 * this.maxPartialBytes, maxPendingPerSender: 2 });
    port.subscribe(subjects.aggregatorHello(jobId), (_subject, data) => this.hello(data));
    const inboxes = new Map<string, Promise<void>>();
    port.subscribe(subjects.partialInbox(jobId), (subject, data) => {
      const from = subjects.connectionOf(subject);
      const next = (inboxes.get(from) ?? Promise.resolve()).then(() => this.partialFrame(from, data));
      inboxes.set(from, next);
    });
    const opening = (round: Parameters<typeof this.opening>[0]) => this.opening(round);
    const closed = () => this.closed();
    const left = (session: { id: string }) => this.workerLeft(session.id);
    runner.on('opening', opening);
    runner.on('round', closed);
    hub.on('left', left);
    this.detach = () => {
      runner.off('opening', opening);
      runner.off('round', closed);
      hub.off('left', left);
    };
    this.sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_MS);
    this.sweeper.unref();
  }

  /** The aggregators heard from lately, in id order. */
  get aggregators(): string[] {
    return [...this.live.keys()].sort();
  }

  dispose(): void {
    clearInterval(this.sweeper);
    this.detach();
  }

  private hello(data: Uint8Array): void {
    let message;
    try {
      message = parseAggregatorMessage(decodeUntrusted(data, aggregatorBudget(4096, 0, 0)));
    } catch {
      return;
    }
    if (message.type !== 'aggregatorHello' || message.protocol !== AGGREGATION_PROTOCOL) return;
    const known = this.live.has(message.aggregatorId);
    if (!known && this.live.size >= MAX_AGGREGATORS) return;
    this.live.set(message.aggregatorId, Date.now());
    if (known) return;
    this.log(`aggregator ${message.aggregatorId} joined job ${this.runner.job.config.id} (${this.live.size} running)`);
    // The aggregators take the workers' frames from now on; the newcomer needs the current round's owners to pass them on.
    if (this.live.size === 1) this.port.joinInbox(false);
    if (this.plan) this.port.publish(subjects.aggregatorPlan(this.runner.job.config.id), this.plan);
  }

  private opening(round: Parameters<typeof planRound>[1]): void {
    this.plan = undefined;
    if (this.live.size === 0) return;
    const { job } = this.runner;
    const connectionOf = (workerId: string) => {
      const channel = this.hub.sessions.get(workerId)?.channel;
      return channel?.transport === 'nats' ? subjects.connectionOf(channel.remote) : undefined;
    };
    const { plan, fold } = planRound(job, round, this.aggregators, connectionOf, job.tau);
    round.fold = fold;
    this.plan = pack(plan).slice();
    this.port.publish(subjects.aggregatorPlan(job.config.id), this.plan);
  }

  /** A round closed: its plan is done with (the job learnt τ for the next round from it). */
  private closed(): void {
    this.plan = undefined;
  }

  private workerLeft(workerId: string): void {
    const round = this.runner.job.current;
    if (!round?.fold?.owners.has(workerId)) return;
    const message = { type: 'roundFailures', jobId: this.runner.job.config.id, round: round.round, workerIds: [workerId] };
    this.port.publish(subjects.aggregatorPlan(this.runner.job.config.id), pack(message).slice());
  }

  private async partialFrame(from: string, frame: Uint8Array): Promise<void> {
    let bytes: Uint8Array | undefined = frame;
    try {
      if (isChunk(frame)) bytes = await this.reassembler.add(from, frame, Date.now());
      if (!bytes) return;
      const workers = this.runner.job.current?.assignments.size ?? 0;
      const message = parseAggregatorMessage(
        decodeUntrusted(bytes, aggregatorBudget(this.maxPartialBytes, Object.keys(this.runner.job.shapes).length, workers)),
      );
      if (message.type !== 'partial' || message.aggregatorId !== from) return;
      this.partial(message, bytes.byteLength);
    } catch (error) {
      const reason = isTesseraError(error) ? `${error.code} at ${error.field ?? '-'}: ${error.message}` : (error as Error).message;
      this.log(`partial from aggregator ${from} refused: ${reason}`);
    }
  }

  private partial(message: PartialMessage, bytes: number): void {
    const runner = this.runner;
    if (message.jobId !== runner.job.config.id) return;
    const applied = addPartial(runner.job.current, message, Date.now());
    runner.emit('partial', message.aggregatorId, message.round, applied.accepted.length, bytes);
    for (const { workerId, error } of applied.refused) runner.emit('rejected', workerId, error);
    runner.closeIfComplete();
  }

  /** Aggregators silent too long are gone: the workers they owned this round count as failed, as a dead worker does. */
  private sweep(now: number): void {
    for (const [id, heardAt] of this.live) {
      if (now - heardAt <= AGGREGATOR_SILENCE_MS) continue;
      this.live.delete(id);
      this.log(`aggregator ${id} is gone (silent ${((now - heardAt) / 1000).toFixed(1)} s; ${this.live.size} running)`);
      const round = this.runner.job.current;
      if (round?.fold && !round.fold.partials.has(id)) {
        for (const [workerId, owner] of round.fold.owners)
          if (owner === id) this.runner.job.markFailed(workerId, 'LEFT', `its updates' aggregator ${id} is gone`);
        this.runner.closeIfComplete();
      }
      if (this.live.size === 0) this.port.joinInbox(true);
    }
    this.reassembler.expire(now, 30_000);
  }
}
