import type { NatsConnection, Subscription } from 'nats';
import { isChunk, Reassembler, splitMessage } from '../shared/codec/chunking.ts';
import { pack, unpack } from '../shared/codec/packr.ts';
import { decodeUntrusted } from '../shared/codec/untrusted.ts';
import { AGGREGATION_PROTOCOL, HELLO_EVERY_MS, parsePlanMessage, type RoundPlan } from '../shared/protocol/aggregation.ts';
import { ErrorCode, TesseraError, isTesseraError } from '../shared/protocol/errors.ts';
import { LIMITS, parseWorkerMessage, type CoordinatorMessage } from '../shared/protocol/messages.ts';
import { subjects } from '../shared/protocol/subjects.ts';
import { DEFAULT_DOOR_LIMITS, messageBudget, updateFrameLimit } from '../coordinator/limits.ts';
import { RoundFold } from './round-fold.ts';

export interface AggregatorOptions {
  jobId: string;
  /** A subject token naming this process (the hostname and pid by default, in main.ts). */
  aggregatorId: string;
  /** Told of each partial sent and each refusal. */
  log?: (line: string) => void;
  /** The partial goes at this fraction of the round's deadline even when owned workers have not all answered (default 0.9). */
  deadlineFraction?: number;
}

/** Chunked messages one worker connection may have incomplete at once (its update, and a resend). */
const MAX_PENDING_PER_CONNECTION = 2;
/** Chunks that stop coming for this long are dropped (the worker is asked again, as the coordinator would ask). */
const CHUNK_TIMEOUT_MS = 30_000;

/**
 * An aggregator process's work on one NATS connection for one job.
 *
 * Routing (docs/aggregators.md): the aggregators and, while
 * none runs, the coordinator share one queue group on the workers' inbox
 * subject, so each frame a worker sends reaches one aggregator. A queue group
 * picks per message, and a chunked update is many messages: so each round's
 * plan names one owner per worker connection (rendezvous hashing over the
 * live aggregators, done by the coordinator), and an aggregator that gets a
 * frame of a connection it does not own passes it to the owner on the
 * owner's subject. The owner puts chunks together, checks the update, folds
 * it and answers the worker (ack or reject, on the worker's own subject).
 * Everything else (hellos, heartbeats, weight fetches, updates of rounds
 * that do not fold or that it does not know) is relayed to the coordinator
 * unchanged, which reads it as if it came from the worker.
 */
export class Aggregator {
  private current: RoundFold | undefined;
  private readonly subscriptions: Subscription[] = [];
  private readonly reassembler = new Reassembler(LIMITS.maxTensorBytes + 1024 * 1024, {
    maxTotalBytes: 512 * 1024 * 1024,
    maxPendingPerSender: MAX_PENDING_PER_CONNECTION,
  });
  private readonly planAssembler = new Reassembler(64 * 1024 * 1024);
  /** Frames of one connection are handled in order (reassembly is async). */
  private readonly inboxes = new Map<string, Promise<void>>();
  private outbox: Promise<void> = Promise.resolve();
  // Started at random: the coordinator keys chunks by worker connection and message id, and a message relayed
  // (chunked again) by this aggregator must not share an id with one the worker or another aggregator sends.
  private nextMessageId = 1 + Math.floor(Math.random() * 2 ** 30);
  private timers: NodeJS.Timeout[] = [];
  private deadline: NodeJS.Timeout | undefined;
  private updateLimit = 0;
  /** Counts for the log and tests: partials sent, updates folded and refused, frames passed to owners and relayed. */
  readonly counts = { partials: 0, folded: 0, refused: 0, forwarded: 0, relayed: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: AggregatorOptions,
  ) {
    subjects.ownerInbox(options.jobId, options.aggregatorId);
  }

  /** Subscribes (plans first, then the queue group) and starts saying hello. */
  async start(): Promise<void> {
    const { jobId, aggregatorId } = this.options;
    let plans: Promise<void> = Promise.resolve();
    this.subscriptions.push(
      this.nc.subscribe(subjects.aggregatorPlan(jobId), {
        callback: (error, message) => {
          if (error) return;
          const frame = message.data;
          plans = plans.then(() => this.receivePlan(frame)).catch((failure) => this.log(`a plan that could not be read: ${(failure as Error).message}`));
        },
      }),
      this.nc.subscribe(subjects.ownerInbox(jobId, aggregatorId), {
        callback: (error, message) => {
          if (!error) this.owned(subjects.connectionOf(message.subject), message.data);
        },
      }),
    );
    await this.nc.flush();
    this.subscriptions.push(
      this.nc.subscribe(subjects.coordinatorInbox(jobId), {
        queue: subjects.inboxQueue(jobId),
        callback: (error, message) => {
          if (!error) this.fromWorker(subjects.connectionOf(message.subject), message.data);
        },
      }),
    );
    await this.nc.flush();
    const hello = () =>
      this.nc.publish(subjects.aggregatorHello(jobId), pack({ type: 'aggregatorHello', aggregatorId, protocol: AGGREGATION_PROTOCOL }).slice());
    hello();
    const sweeper = () => {
      for (const lost of this.reassembler.expire(Date.now(), CHUNK_TIMEOUT_MS))
        this.toWorker(lost.sender, {
          type: 'reject',
          code: ErrorCode.IncompleteMessage,
          message: `only ${lost.received} of ${lost.count} chunks arrived; send the message again`,
          field: 'chunk',
        });
      this.planAssembler.expire(Date.now(), CHUNK_TIMEOUT_MS);
    };
    this.timers.push(setInterval(hello, HELLO_EVERY_MS), setInterval(sweeper, 5_000));
  }

  /** Leaves the queue group first (so no frame is taken and then dropped), then sends what it holds. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    clearTimeout(this.deadline);
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    await Promise.all(this.inboxes.values());
    this.sendPartial();
    await this.outbox;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private async receivePlan(frame: Uint8Array): Promise<void> {
    const bytes = isChunk(frame) ? await this.planAssembler.add('coordinator', frame, Date.now()) : frame;
    if (!bytes) return;
    const message = parsePlanMessage(unpack(bytes));
    if (message.type === 'roundFailures') {
      if (this.current?.round !== message.round) return;
      this.current.markFailed(message.workerIds);
      if (this.current.complete) this.sendPartial();
      return;
    }
    this.startRound(message);
  }

  private startRound(plan: RoundPlan): void {
    if (this.current?.round === plan.round) return;
    // A new round means the coordinator closed the last one: a partial of it now would be ignored.
    clearTimeout(this.deadline);
    this.current = new RoundFold(plan, this.options.aggregatorId, Date.now());
    this.updateLimit = updateFrameLimit(plan.job.shapes, DEFAULT_DOOR_LIMITS.updateMarginBytes);
    const fold = this.current;
    if (!plan.fold) return;
    this.deadline = setTimeout(
      () => {
        if (this.current === fold) this.sendPartial();
      },
      plan.deadlineMs * (this.options.deadlineFraction ?? 0.9),
    );
    this.deadline.unref();
  }

  /** A frame from the queue group: to its connection's owner, or relayed as it is. */
  private fromWorker(connectionId: string, frame: Uint8Array): void {
    const owner = this.current?.ownerOf(connectionId);
    if (owner === this.options.aggregatorId) return this.owned(connectionId, frame);
    if (owner !== undefined) {
      this.counts.forwarded += 1;
      this.nc.publish(subjects.ownerFrames(this.options.jobId, owner, connectionId), frame);
      return;
    }
    this.relay(connectionId, frame);
  }

  private relay(connectionId: string, frame: Uint8Array): void {
    this.counts.relayed += 1;
    this.nc.publish(subjects.relay(this.options.jobId, connectionId), frame);
  }

  /** A frame of a connection this aggregator owns (from the queue group or another aggregator), handled in order. */
  private owned(connectionId: string, frame: Uint8Array): void {
    const previous = this.inboxes.get(connectionId) ?? Promise.resolve();
    const next = previous.then(() => this.ownedFrame(connectionId, frame));
    this.inboxes.set(connectionId, next);
    void next.then(() => {
      if (this.inboxes.get(connectionId) === next) this.inboxes.delete(connectionId);
    });
  }

  private async ownedFrame(connectionId: string, frame: Uint8Array): Promise<void> {
    if (!isChunk(frame)) return this.wholeMessage(connectionId, frame, [frame]);
    const frames = [frame];
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.reassembler.add(connectionId, frame, Date.now(), this.updateLimit);
    } catch (failure) {
      const error = isTesseraError(failure) ? failure : new TesseraError(ErrorCode.DecodeFailed, 'a chunk that could not be read', { cause: failure });
      this.toWorker(connectionId, { type: 'reject', ...error.toWire() });
      return;
    }
    if (bytes) await this.wholeMessage(connectionId, bytes, frames);
  }

  /**
   * A whole message of an owned connection: an update of the round this
   * aggregator folds is judged here; anything else goes to the coordinator.
   */
  private async wholeMessage(connectionId: string, bytes: Uint8Array, frames: Uint8Array[]): Promise<void> {
    const fold = this.current;
    const workerId = fold?.foldsFor(connectionId);
    let update;
    if (fold && workerId !== undefined) {
      try {
        const value = decodeUntrusted(bytes, messageBudget(this.updateLimit));
        const message = parseWorkerMessage(value);
        if (message.type === 'update' && message.round === fold.round) update = message;
      } catch {
        // The coordinator's door refuses it, naming the field, as it would without aggregators.
      }
    }
    if (!fold || workerId === undefined || !update) {
      // Reassembled here: sent on whole (chunked again when above a frame).
      if (frames.length === 1 && frames[0] === bytes) return this.relay(connectionId, bytes);
      return this.publishChunked(subjects.relay(this.options.jobId, connectionId), bytes);
    }
    const verdict = fold.judge(workerId, update, Date.now());
    if (verdict.folded) {
      this.counts.folded += 1;
      this.toWorker(connectionId, { type: 'ack', round: update.round });
    } else {
      this.counts.refused += 1;
      this.log(`update from ${workerId} refused: ${verdict.error.code} at ${verdict.error.field ?? '-'}: ${verdict.error.message}`);
      this.toWorker(connectionId, { type: 'reject', round: update.round, ...verdict.error.toWire() });
    }
    if (fold.complete) this.sendPartial();
  }

  /** Sends the current round's partial once (nothing when it judged no update). */
  private sendPartial(): void {
    const fold = this.current;
    if (!fold || fold.sealed || !fold.plan.fold) return;
    clearTimeout(this.deadline);
    const partial = fold.partial();
    if (fold.judged === 0) return;
    this.counts.partials += 1;
    this.log(`round ${fold.round}: partial of ${partial.accepted.length} updates (${partial.refused.length} refused) sent`);
    this.publishChunked(subjects.partial(this.options.jobId, this.options.aggregatorId), pack(partial).slice());
  }

  private toWorker(connectionId: string, message: CoordinatorMessage): void {
    this.publishChunked(subjects.toWorker(this.options.jobId, connectionId), pack(message).slice());
  }

  /** Publishes in order, chunked above the server's max_payload. */
  private publishChunked(subject: string, bytes: Uint8Array): Promise<void> {
    const maxFrame = this.nc.info?.max_payload ?? 1024 * 1024;
    this.outbox = this.outbox
      .then(async () => {
        for (const frame of await splitMessage(bytes, maxFrame, this.nextMessageId++)) this.nc.publish(subject, frame);
      })
      .catch(() => {
        /* the connection closed: the round's partial is missing, as a dead aggregator's is */
      });
    return this.outbox;
  }
}
