import { EventEmitter } from 'node:events';
import { unpack } from '../shared/codec/packr.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { parseWorkerMessage, type Hello, type WorkerMessage } from '../shared/protocol/messages.ts';
import type { JobRunner } from './runner.ts';
import type { ChannelHandler, WorkerChannel } from './transports/types.ts';
import type { WorkerSession } from './workers.ts';

export interface HubOptions {
  /** The job a worker joins when its hello names none. */
  defaultJobId: string;
  heartbeatMs: number;
  /** Required in every hello when set. */
  workerToken?: string;
}

export interface HubEvents {
  /** A job was added to the coordinator (at start or through the API). */
  jobAdded: [runner: JobRunner];
  /** Bytes of tensors sent to workers: weights fetched by one worker, or broadcast once to all (NATS). */
  bytesOut: [jobId: string, bytes: number, kind: 'weights-fetch' | 'weights-broadcast', transport: string];
  joined: [session: WorkerSession];
  left: [session: WorkerSession, reason: string];
  /** A message refused at the door (bad bytes, bad fields, wrong state), counted by code. */
  refused: [code: ErrorCode, field: string | undefined, channel: WorkerChannel];
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
  private nextWorker = 0;

  constructor(private readonly options: HubOptions) {
    super();
  }

  addRunner(runner: JobRunner): void {
    this.runners.set(runner.job.config.id, runner);
    // Updates the job refuses count with the door's refusals: one tally of bad input by code.
    runner.on('rejected', (_workerId, error) => this.count(error.code));
    this.emit('jobAdded', runner);
  }

  private count(code: ErrorCode): void {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
  }

  onMessage(channel: WorkerChannel, bytes: Uint8Array): void {
    let message: WorkerMessage;
    try {
      message = parseWorkerMessage(unpack(bytes));
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
    const session = this.byChannel.get(channel);
    if (!session) return;
    this.byChannel.delete(channel);
    if (session.channel !== channel) return;
    session.channel = undefined;
    this.runners.get(session.jobId)?.removeWorker(session.id, reason);
    this.emit('left', session, reason);
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
        channel.send({ type: 'weights', hash: weights.hash, version: weights.version, codec: weights.codec, tensors: weights.bytes });
        this.emit('bytesOut', session.jobId, weights.bytes.byteLength, 'weights-fetch', channel.transport);
        return;
      }
      case 'update':
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
    if (current && current.id !== hello.workerId) throw new TesseraError(ErrorCode.InvalidMessage, 'a second hello on one connection must keep the worker id', { field: 'workerId' });
    if (this.options.workerToken !== undefined && hello.token !== this.options.workerToken) {
      this.fail(channel, new TesseraError(ErrorCode.Unauthorized, hello.token === undefined ? 'this coordinator needs a worker token' : 'wrong worker token', { field: 'token' }));
      return;
    }
    const jobId = hello.jobId ?? this.options.defaultJobId;
    const runner = this.runners.get(jobId);
    if (!runner) {
      this.fail(channel, new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(jobId)}; jobs: ${[...this.runners.keys()].join(', ')}`, { field: 'jobId' }));
      return;
    }
    if (hello.workerId !== undefined && runner.verifier.isBanned(hello.workerId)) {
      this.fail(channel, new TesseraError(ErrorCode.Unauthorized, `worker ${hello.workerId} is banned from job ${jobId}`, { field: 'workerId' }));
      return;
    }
    const now = Date.now();
    // A reconnecting worker keeps its id and counters; a new one (or one the coordinator forgot on restart) gets them fresh.
    const known = hello.workerId ? this.sessions.get(hello.workerId) : undefined;
    const session: WorkerSession = known && known.jobId === jobId
      ? known
      : {
          id: hello.workerId ?? `w${++this.nextWorker}-${Math.random().toString(36).slice(2, 8)}`,
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
      // The same worker id on a second connection: the newer one wins.
      this.byChannel.delete(session.channel);
      session.channel.close('replaced by a newer connection');
    }
    Object.assign(session, { backend: hello.backend, device: hello.device, kind: hello.kind, channel, lastSeenAt: now });
    this.sessions.set(session.id, session);
    this.byChannel.set(channel, session);
    const { config } = runner.job;
    channel.send({
      type: 'welcome',
      workerId: session.id,
      jobId,
      model: { id: config.model.id, config: config.model.config },
      dataset: { id: config.dataset.id },
      heartbeatMs: this.options.heartbeatMs,
    });
    if (!rejoining) this.emit('joined', session);
    runner.addWorker(session);
  }

  /** Refuses one message; the worker stays connected and the job is untouched. */
  private refuse(channel: WorkerChannel, error: unknown, round: number | undefined): void {
    const failure = error instanceof TesseraError ? error : new TesseraError(ErrorCode.Internal, String(error), { cause: error });
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
