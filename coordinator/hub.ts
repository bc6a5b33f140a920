import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { listCodecs } from '../shared/codec/index.ts';
import { decodeUntrusted } from '../shared/codec/untrusted.ts';
import { ErrorCode, TesseraError, describe, isTesseraError } from '../shared/protocol/errors.ts';
import { parseWorkerMessage, type Hello, type Update, type WorkerMessage } from '../shared/protocol/messages.ts';
import { ConnectionGuard } from './door.ts';
import { DEFAULT_DOOR_LIMITS, messageBudget, updateFrameLimit, type DoorLimits } from './limits.ts';
import { identityOf } from './identity.ts';
import type { JobRunner } from './job/runner.ts';
import type { ChannelHandler, WorkerChannel } from '../shared/transport/coordinator.ts';
import type { WorkerSession } from './workers.ts';
import { jobData } from './job-data.ts';

export interface HubOptions {
  /** The job a worker joins when its hello names none. */
  defaultJobId: string;
  heartbeatMs: number;
  /** Required in every hello when set. */
  workerToken?: string;
  /** Overrides of the door's limits (sizes, rates, deadlines); the defaults and their reasons are in limits.ts. */
  limits?: Partial<DoorLimits>;
}

/** The longest message type worth reading: the longest one there is, with room. */
const MAX_TYPE_LENGTH = 32;

export interface HubEvents {
  /** A job was added to the coordinator (at start or through the API). */
  jobAdded: [runner: JobRunner];
  /** Bytes of tensors sent to workers: weights pushed to one before its assignment, fetched by one, or broadcast once to all (NATS). */
  bytesOut: [jobId: string, bytes: number, kind: 'weights-fetch' | 'weights-push' | 'weights-broadcast', transport: string];
  joined: [session: WorkerSession];
  left: [session: WorkerSession, reason: string];
  /** A message refused at the door (bad bytes, bad fields, wrong state), counted by code. */
  refused: [code: ErrorCode, field: string | undefined, channel: WorkerChannel];
}

/** What an update of one job may weigh: its connection's message limit, and the tensor bytes each codec writes at most. */
interface UpdateBounds {
  frameBytes: number;
  tensorBytes: ReadonlyMap<string, number>;
}

/**
 * The door every worker message comes through, whatever the transport:
 * decodes and validates it, names the culprit when it is bad, and hands good
 * messages to the job's runner.
 */
export class Hub extends EventEmitter<HubEvents> implements ChannelHandler {
  readonly runners = new Map<string, JobRunner>();
  readonly sessions = new Map<string, WorkerSession>();
  private readonly byChannel = new Map<WorkerChannel, WorkerSession>();
  /** Every refusal of bad input, at the door or by the job, by code. */
  readonly refusals = new Map<ErrorCode, number>();
  readonly limits: DoorLimits;
  private readonly guard: ConnectionGuard;
  /** Departed workers' sessions, oldest first, each with the timer that forgets it. */
  private readonly away = new Map<string, ReturnType<typeof setTimeout>>();
  /** Each job's bounds on an update, computed once from its tensors' shapes (a walk over every shape: ~25 us, too much per update). */
  private readonly updateBounds = new WeakMap<JobRunner, UpdateBounds>();
  private nextWorker = 0;

  constructor(private readonly options: HubOptions) {
    super();
    this.limits = { ...DEFAULT_DOOR_LIMITS, ...options.limits };
    this.guard = new ConnectionGuard(this.limits, (channel) => {
      const error = new TesseraError(ErrorCode.NotRegistered, `no hello within ${this.limits.helloDeadlineMs} ms`, { field: 'hello' });
      this.refuse(channel, error, undefined);
      channel.close(`${error.code}: ${error.message}`);
    });
  }

  /** The session a connection speaks for, if it said hello. */
  sessionOf(channel: WorkerChannel): WorkerSession | undefined {
    return this.byChannel.get(channel);
  }

  /** Connections open now that have not said hello yet. */
  get waitingForHello(): number {
    return this.guard.waitingForHello;
  }

  addRunner(runner: JobRunner): void {
    this.runners.set(runner.job.config.id, runner);
    // Updates the job refuses count with the door's refusals: one tally of bad input by code.
    runner.on('rejected', (_workerId, error) => this.count(error.code));
    runner.on('weightsPushed', (bytes, transport) => this.emit('bytesOut', runner.job.config.id, bytes, 'weights-push', transport));
    this.emit('jobAdded', runner);
  }

  private count(code: ErrorCode): void {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
  }

  onOpen(channel: WorkerChannel): void {
    const refusal = this.guard.open(channel, Date.now());
    if (!refusal) return;
    // Not an `error`: a worker turned away by a crowd should come back later, not give up.
    this.refuse(channel, refusal, undefined);
    channel.close(`${refusal.code}: ${refusal.message}`);
  }

  onRefused(channel: WorkerChannel, error: TesseraError): void {
    this.count(error.code);
    this.emit('refused', error.code, error.field, channel);
  }

  /**
   * One message through the door: its size for the connection's stage and the
   * connection's rates are checked first, then it is decoded within a budget
   * and validated; only then does anyone act on it.
   */
  onMessage(channel: WorkerChannel, bytes: Uint8Array): void {
    // Transports open their connections first; one that did not (a test's channel) is opened now.
    if (!this.guard.knows(channel)) {
      this.onOpen(channel);
      if (!this.guard.knows(channel)) return;
    }
    const refusal = this.guard.check(channel, bytes.byteLength, Date.now());
    if (refusal) {
      this.refuse(channel, refusal.error, undefined);
      if (refusal.close) channel.close(`${refusal.error.code}: ${refusal.error.message}`);
      return;
    }
    let message: WorkerMessage;
    try {
      const value = decodeUntrusted(bytes, messageBudget(this.guard.messageLimit(channel)));
      const type = typeOf(value);
      // Only an update may be large; anything else is held to the small limit whatever the connection's.
      if (bytes.byteLength > this.limits.controlMessageBytes && type !== 'update') {
        throw new TesseraError(ErrorCode.TooLarge, `${bytes.byteLength} bytes, above ${this.limits.controlMessageBytes} for a message other than an update`, {
          field: 'message',
        });
      }
      message = parseWorkerMessage(value);
    } catch (error) {
      this.refuse(channel, error, undefined);
      return;
    }
    try {
      this.dispatch(channel, message);
    } catch (error) {
      this.refuse(channel, error, message.type === 'update' ? message.round : undefined);
    }
  }

  onClose(channel: WorkerChannel, reason: string): void {
    this.guard.closed(channel);
    const session = this.byChannel.get(channel);
    if (!session) return;
    this.byChannel.delete(channel);
    if (session.channel !== channel) return;
    session.channel = undefined;
    this.runners.get(session.jobId)?.removeWorker(session.id, reason);
    this.emit('left', session, reason);
    this.forgetLater(session);
  }

  /** Stops the door's timers (hello deadlines, session grace): the coordinator is closing. */
  dispose(): void {
    this.guard.dispose();
    for (const timer of this.away.values()) clearTimeout(timer);
    this.away.clear();
  }

  private boundsOf(runner: JobRunner): UpdateBounds {
    let bounds = this.updateBounds.get(runner);
    if (!bounds) {
      const { shapes } = runner.job;
      bounds = {
        frameBytes: updateFrameLimit(shapes, this.limits.updateMarginBytes),
        tensorBytes: new Map(listCodecs().map((codec) => [codec.id, codec.maxEncodedBytes(shapes)])),
      };
      this.updateBounds.set(runner, bounds);
    }
    return bounds;
  }

  /** Refuses an update whose tensors are larger than its codec can write for the job's shapes, before they are decoded. */
  private checkUpdateSize(runner: JobRunner, update: Update): void {
    const bound = this.boundsOf(runner).tensorBytes.get(update.codec);
    // An unknown codec is the job's to refuse, naming it.
    if (bound === undefined) return;
    if (update.tensors.byteLength > bound) {
      throw new TesseraError(
        ErrorCode.TooLarge,
        `${update.tensors.byteLength} bytes of tensors, above the ${bound} the ${update.codec} codec writes for this job's model`,
        { field: 'tensors' },
      );
    }
  }

  /**
   * A departed worker's session is kept for the grace period, so a worker
   * back after a lost link keeps its id and counters; then it is forgotten.
   * At most maxAwaySessions are kept: past that the oldest go first.
   */
  private forgetLater(session: WorkerSession): void {
    clearTimeout(this.away.get(session.id));
    this.away.delete(session.id);
    const timer = setTimeout(() => this.forget(session.id), this.limits.sessionGraceMs);
    timer.unref?.();
    this.away.set(session.id, timer);
    for (const [id, oldest] of this.away) {
      if (this.away.size <= this.limits.maxAwaySessions) break;
      clearTimeout(oldest);
      this.forget(id);
    }
  }

  private forget(workerId: string): void {
    this.away.delete(workerId);
    const session = this.sessions.get(workerId);
    // A worker that came back is connected again and stays.
    if (session && !session.channel) this.sessions.delete(workerId);
  }

  private dispatch(channel: WorkerChannel, message: WorkerMessage): void {
    if (message.type === 'hello') {
      this.hello(channel, message);
      return;
    }
    const session = this.byChannel.get(channel);
    if (!session) throw new TesseraError(ErrorCode.NotRegistered, 'say hello first', { field: 'type' });
    session.lastSeenAt = Date.now();
    const runner = this.runners.get(session.jobId)!;
    switch (message.type) {
      case 'fetchWeights': {
        const weights = runner.job.weightsByHash(message.hash);
        if (!weights) throw new TesseraError(ErrorCode.UnknownWeights, `no weights with hash ${message.hash.slice(0, 16)}…`, { field: 'hash' });
        session.weightFetches += 1;
        session.weightsSent = weights.hash;
        channel.send(weights.message);
        this.emit('bytesOut', session.jobId, weights.bytes.byteLength, 'weights-fetch', channel.transport);
        return;
      }
      case 'update':
        this.checkUpdateSize(runner, message);
        runner.receiveUpdate(session, message);
        return;
      case 'heartbeat':
        return;
      case 'leave':
        this.onClose(channel, `left: ${message.reason}`);
        channel.close('bye');
        return;
    }
  }

  private hello(channel: WorkerChannel, hello: Hello): void {
    // A second hello on one connection re-registers (a NATS worker after its client reconnected): welcome again, resend its work.
    const current = this.byChannel.get(channel);
    if (current && current.id !== hello.workerId)
      throw new TesseraError(ErrorCode.InvalidMessage, 'a second hello on one connection must keep the worker id', { field: 'workerId' });
    const identity = identityOf(this);
    const admitted = identity.admit(hello.token, this.options.workerToken, hello.jobId);
    if (admitted instanceof Promise) {
      // A join token seen for the first time is verified asynchronously. Nothing is registered meanwhile (the connection
      // may be gone by then): once the token is known good the worker is asked to say hello again, and is let in from memory.
      void admitted.then((verdict) =>
        verdict instanceof TesseraError
          ? this.fail(channel, verdict)
          : channel.send({ type: 'reject', code: ErrorCode.NotRegistered, message: 'join token accepted: say hello again', field: 'token' }),
      );
      return;
    }
    if (admitted instanceof TesseraError) {
      this.fail(channel, admitted);
      return;
    }
    const jobId = hello.jobId ?? (admitted.via === 'join-token' ? admitted.jobId : this.options.defaultJobId);
    if (channel.jobId !== undefined && channel.jobId !== jobId) {
      // Its subjects are the other job's: it would get that job's broadcasts while training this one.
      this.fail(
        channel,
        new TesseraError(ErrorCode.InvalidMessage, `this connection's subjects are job ${JSON.stringify(channel.jobId)}'s`, { field: 'jobId' }),
      );
      return;
    }
    const runner = this.runners.get(jobId);
    if (!runner) {
      this.fail(
        channel,
        new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(jobId)}; jobs: ${[...this.runners.keys()].join(', ')}`, { field: 'jobId' }),
      );
      return;
    }
    if (hello.workerId !== undefined && runner.verifier.isBanned(hello.workerId)) {
      this.fail(channel, new TesseraError(ErrorCode.Unauthorized, `worker ${hello.workerId} is banned from job ${jobId}`, { field: 'workerId' }));
      return;
    }
    const now = Date.now();
    const claimed = hello.workerId ? this.sessions.get(hello.workerId) : undefined;
    // A worker id is public: speaking as one takes the secret its last welcome carried (its own connection already has it).
    // A wrong claim is refused and the worker keeps its connection, its session and its work.
    if (claimed && claimed.channel !== channel && !identity.secrets.resumes(claimed, hello.resumeSecret)) {
      this.fail(
        channel,
        new TesseraError(
          ErrorCode.Unauthorized,
          hello.resumeSecret === undefined ? `worker ${claimed.id} is resumed with the secret its welcome carried` : 'wrong resume secret',
          { field: 'resumeSecret' },
        ),
      );
      return;
    }
    // A reconnecting worker keeps its id and counters. One the coordinator forgot (a restart) keeps its id if its secret is one
    // we signed for that id, with counters fresh; any other hello gets a new id of ours.
    const vouched = !claimed && hello.workerId !== undefined && identity.secrets.vouchesFor(jobId, hello.workerId, hello.resumeSecret);
    const session: WorkerSession =
      claimed && claimed.jobId === jobId
        ? claimed
        : {
            id: vouched ? hello.workerId! : `w${++this.nextWorker}-${randomBytes(4).toString('hex')}`,
            jobId,
            kind: hello.kind,
            backend: hello.backend,
            device: hello.device,
            name: hello.name ?? hello.kind,
            channel: undefined,
            joinedAt: now,
            lastSeenAt: now,
            samplesPerSecond: hello.samplesPerSecond ?? 0,
            samplesContributed: 0,
            updatesAccepted: 0,
            updatesRejected: 0,
            bytesReceived: 0,
            weightFetches: 0,
          };
    const rejoining = session.channel === channel;
    if (session.channel && session.channel !== channel) {
      // The same worker, with its secret, on a second connection: the newer one wins.
      this.byChannel.delete(session.channel);
      session.channel.close('replaced by a newer connection');
    }
    // A new connection holds no weights the coordinator sent (a worker keeps those it has, and a second push is ignored).
    Object.assign(session, { backend: hello.backend, device: hello.device, kind: hello.kind, channel, lastSeenAt: now, weightsSent: undefined });
    this.sessions.set(session.id, session);
    this.byChannel.set(channel, session);
    identity.bind(session, admitted);
    this.guard.welcome(channel, this.boundsOf(runner).frameBytes, now);
    const { config } = runner.job;
    channel.send({
      type: 'welcome',
      workerId: session.id,
      jobId,
      model: { id: config.model.id, config: config.model.config },
      dataset: jobData(config).welcome,
      heartbeatMs: this.options.heartbeatMs,
      ...identity.secrets.issue(session),
    });
    if (!rejoining) this.emit('joined', session);
    runner.addWorker(session);
  }

  /** Refuses one message; the worker stays connected and the job is untouched. */
  private refuse(channel: WorkerChannel, error: unknown, round: number | undefined): void {
    const failure = isTesseraError(error)
      ? error
      : new TesseraError(ErrorCode.Internal, `could not handle the message (${errorText(error)})`, { cause: error });
    this.count(failure.code);
    this.emit('refused', failure.code, failure.field, channel);
    channel.send(round === undefined ? { type: 'reject', ...failure.toWire() } : { type: 'reject', round, ...failure.toWire() });
  }

  /** Refuses a hello: the error goes back, then the connection closes. */
  private fail(channel: WorkerChannel, error: TesseraError): void {
    this.count(error.code);
    this.emit('refused', error.code, error.field, channel);
    channel.send({ type: 'error', ...error.toWire() });
    channel.close(error.code);
  }
}

/**
 * A decoded message's type, checked before the parser builds any text from
 * it: a type that is not a short string is refused here, described by kind
 * and size only. Undefined when the message is not a map (the parser names that).
 */
function typeOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) return undefined;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || type.length > MAX_TYPE_LENGTH) {
    throw new TesseraError(ErrorCode.UnknownMessageType, `expected a message type, got ${describe(type)}`, { field: 'type' });
  }
  return type;
}

/** Short text for an error the hub did not expect (its own bug): the class and the start of the message, never the whole value. */
function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message.slice(0, 120)}`;
  return describe(error);
}
