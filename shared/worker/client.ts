import { getCodec } from '../codec/index.ts';
import { arraysToTensors, decodeArrays } from '../codec/named.ts';
import { pack, unpack } from '../codec/packr.ts';
import type { NamedArrays } from '../codec/types.ts';
import type { Batch, DataShape, Trainer } from '../models/types.ts';
import { ErrorCode, TesseraError, isTesseraError } from '../protocol/errors.ts';
import {
  PROTOCOL_VERSION,
  parseCoordinatorMessage,
  type Assign,
  type CoordinatorMessage,
  type Hello,
  type Update,
  type Weights,
  type Welcome,
  type WelcomeDataset,
  type WorkerKind,
} from '../protocol/messages.ts';
import type { TransportClosed, WorkerTransport, WorkerTransportFactory } from '../transport/worker.ts';
import { LocalCompute, type StepCompute } from './compute.ts';
import { ErrorFeedback } from './error-feedback.ts';

export type WorkerEvent =
  | { type: 'connected'; workerId: string; jobId: string; modelId: string }
  | { type: 'disconnected'; reason: string; retryInMs: number }
  | { type: 'update'; round: number; samples: number; computeMs: number; losses: Record<string, number> }
  | { type: 'ack'; round: number }
  | { type: 'reject'; round?: number; code: ErrorCode; message: string; field?: string }
  | { type: 'idle'; reason: string }
  | { type: 'fatal'; error: TesseraError };

export interface WorkerClientOptions {
  /** The job to join; the coordinator's default job when not given (a transport whose addresses name the job needs it). */
  jobId?: string;
  token?: string;
  kind: WorkerKind;
  backend: string;
  device: string;
  name?: string;
  /** Opens a connection to the coordinator (shared/transport/): at start and at every reconnect, given `jobId`. */
  transport: WorkerTransportFactory;
  /**
   * The examples at these dataset indices, drawn from these shards (Node reads
   * its local copy, a browser fetches them; a folder dataset's shards come by hash).
   */
  loadBatch(dataset: WelcomeDataset, indices: number[], shardIds: number[]): Batch | Promise<Batch>;
  onEvent?(event: WorkerEvent): void;
  /** Reconnect backoff: doubles from the first delay up to the cap, with jitter. */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /**
   * Stretches each compute to `factor` times its length: slow-worker tests,
   * and a browser tab's load limit (50% duty cycle = factor 2). Read per step.
   */
  throttleFactor?: number | (() => number);
  /** Where steps run (default: in this thread, a LocalCompute); the client disposes it when it stops. */
  compute?: StepCompute;
  /** Rejoin under this id (a tab resuming after a pause keeps its counters), with the secret its last welcome carried. */
  workerId?: string;
  resumeSecret?: string;
}

/** How many weight versions to keep: the current one, and the previous for a round still finishing. */
const WEIGHT_CACHE_SIZE = 2;

/**
 * A worker's side of the protocol, for every runtime: says hello, fetches
 * weights once per version (cached by hash), computes each assignment and
 * sends the update; reconnects with backoff when the coordinator goes away.
 */
export class WorkerClient {
  workerId: string | undefined;
  /** The session's secret from the last welcome: resuming `workerId` needs it. */
  resumeSecret: string | undefined;
  /** The session's credential for dataset fetches over HTTP, from the last welcome. */
  dataToken: string | undefined;
  private transport: WorkerTransport | undefined;
  private welcome: Welcome | undefined;
  private readonly stepCompute: StepCompute;
  private readonly weights = new Map<string, NamedArrays>();
  private readonly weightWaiters = new Map<string, { resolve(weights: NamedArrays): void; reject(error: Error): void }>();
  private queue: Assign[] = [];
  /** The last update sent and not yet acknowledged: sent again after a reconnect (the coordinator drops duplicates). */
  private unacknowledged: Update | undefined;
  /** The residuals error feedback carries, when the assignments ask for it. */
  private readonly feedback = new ErrorFeedback();
  private working: Promise<void> | undefined;
  private stopping = false;
  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private awaitingWelcome = false;
  private finished!: (reason: string) => void;
  /** Settles when the client stops for good: asked to, or refused by the coordinator. */
  readonly done: Promise<string>;

  constructor(private readonly options: WorkerClientOptions) {
    this.done = new Promise((resolve) => (this.finished = resolve));
    this.workerId = options.workerId;
    this.resumeSecret = options.resumeSecret;
    this.stepCompute = options.compute ?? new LocalCompute();
  }

  /** The trainer, once the coordinator has said which model, when it runs in this thread (for sampling, tests). */
  get currentTrainer(): Trainer | undefined {
    return this.stepCompute instanceof LocalCompute ? this.stepCompute.trainer : undefined;
  }

  start(): void {
    this.connect();
  }

  /**
   * Leaves cleanly: an update being computed is finished and sent first, then
   * the coordinator is told, then the connection closes.
   */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.queue = [];
    clearTimeout(this.reconnectTimer);
    await this.working;
    this.send({ type: 'leave', reason });
    this.teardown(reason);
  }

  private teardown(reason: string): void {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.helloTimer);
    this.transport?.close(reason);
    this.stepCompute.dispose();
    this.finished(reason);
  }

  private connect(): void {
    let transport: WorkerTransport;
    try {
      transport = this.options.transport({ jobId: this.options.jobId });
    } catch (error) {
      // A transport that cannot be opened as configured (a NATS worker with no job) would fail the same way again.
      this.refused(isTesseraError(error) ? error : new TesseraError(ErrorCode.InvalidConfig, (error as Error).message, { cause: error }));
      return;
    }
    this.transport = transport;
    // Events of a connection given up on (a reconnect replaced it) are not this client's any more.
    const current = () => this.transport === transport;
    transport.connect({
      opened: () => current() && this.sayHello(),
      frame: (bytes) => current() && this.receiveFrame(bytes),
      closed: (reason) => current() && this.lost(reason),
    });
  }

  private receiveFrame(bytes: Uint8Array): void {
    let message: CoordinatorMessage;
    try {
      message = parseCoordinatorMessage(unpack(bytes));
    } catch (error) {
      this.emit({
        type: 'reject',
        code: (error as TesseraError).code ?? ErrorCode.DecodeFailed,
        message: `bad message from the coordinator: ${(error as Error).message}`,
      });
      return;
    }
    this.receive(message);
  }

  /** The connection ended: the client stops when it was refused for good, else connects again after a backoff. */
  private lost(closed: TransportClosed): void {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.helloTimer);
    if (closed.kind === 'fatal') {
      if (!this.stopping) this.refused(closed.error);
      return;
    }
    this.queue = [];
    for (const waiter of this.weightWaiters.values()) waiter.reject(new Error('connection lost'));
    this.weightWaiters.clear();
    if (this.stopping) return;
    const initial = this.options.reconnectInitialMs ?? 250;
    const delay = Math.min(this.options.reconnectMaxMs ?? 10_000, initial * 2 ** this.attempts) * (0.75 + 0.5 * Math.random());
    this.attempts += 1;
    this.emit({ type: 'disconnected', reason: closed.reason, retryInMs: Math.round(delay) });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Refused for good (wrong credentials, unknown job): trying again would be refused again. */
  private refused(error: TesseraError): void {
    this.emit({ type: 'fatal', error });
    this.stopping = true;
    this.teardown(`${error.code}: ${error.message}`);
  }

  /**
   * Registers; says it again until a welcome comes, since over NATS a hello
   * sent while the coordinator is still resubscribing is simply lost.
   */
  private sayHello(attempt = 0): void {
    clearTimeout(this.helloTimer);
    this.awaitingWelcome = true;
    this.helloTimer = setTimeout(
      () => {
        if (this.awaitingWelcome && !this.stopping) this.sayHello(attempt + 1);
      },
      Math.min(10_000, 1_000 * 2 ** attempt),
    );
    const hello: Hello = { type: 'hello', protocol: PROTOCOL_VERSION, kind: this.options.kind, backend: this.options.backend, device: this.options.device };
    if (this.options.jobId) hello.jobId = this.options.jobId;
    if (this.workerId) hello.workerId = this.workerId;
    if (this.workerId && this.resumeSecret) hello.resumeSecret = this.resumeSecret;
    if (this.options.name) hello.name = this.options.name;
    if (this.options.token) hello.token = this.options.token;
    this.send(hello);
  }

  private cacheWeights(hash: string, weights: NamedArrays): void {
    this.weights.set(hash, weights);
    while (this.weights.size > WEIGHT_CACHE_SIZE) this.weights.delete(this.weights.keys().next().value!);
  }

  private receive(message: CoordinatorMessage): void {
    switch (message.type) {
      case 'welcome':
        this.attempts = 0;
        this.awaitingWelcome = false;
        clearTimeout(this.helloTimer);
        this.welcome = message;
        // A rejoin: the coordinator may have restarted from a checkpoint, so no residual is owed to it any more.
        this.feedback.reset();
        this.workerId = message.workerId;
        this.resumeSecret = message.resumeSecret;
        this.dataToken = message.dataToken;
        clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = setInterval(() => this.send({ type: 'heartbeat' }), message.heartbeatMs);
        this.emit({ type: 'connected', workerId: message.workerId, jobId: message.jobId, modelId: message.model.id });
        if (this.unacknowledged) this.send(this.unacknowledged);
        return;
      case 'assign':
        // The ack of the last update, when it came with this assignment (a large round answers at its close).
        if (message.acknowledges !== undefined) this.acknowledged(message.acknowledges);
        // Only the newest assignment can still count: older queued ones belong to rounds that have closed.
        this.queue = [message];
        if (!this.working) this.working = this.work().finally(() => (this.working = undefined));
        return;
      case 'weights':
        void this.receiveWeights(message);
        return;
      case 'ack':
        this.acknowledged(message.round);
        return;
      case 'reject':
        if (message.round !== undefined && this.unacknowledged?.round === message.round && message.code !== ErrorCode.IncompleteMessage)
          this.unacknowledged = undefined;
        this.settleFeedback(message);
        if (message.code === ErrorCode.NotRegistered) {
          // The coordinator restarted and forgot this connection: register again.
          this.sayHello();
        }
        if ((message.code === ErrorCode.IncompleteMessage || message.field?.startsWith('chunk')) && this.unacknowledged) {
          this.send(this.unacknowledged);
        }
        if (message.code === ErrorCode.UnknownWeights) {
          for (const waiter of this.weightWaiters.values()) waiter.reject(new TesseraError(message.code, message.message, { field: message.field }));
          this.weightWaiters.clear();
        }
        this.emit({ type: 'reject', round: message.round, code: message.code, message: message.message, field: message.field });
        return;
      case 'error': {
        if (message.code === ErrorCode.Unauthorized && message.field === 'resumeSecret') {
          // The coordinator holds a newer secret than ours (a welcome lost on the way): join afresh under a new id when the
          // connection closes, rather than stop.
          this.workerId = undefined;
          this.resumeSecret = undefined;
          this.emit({ type: 'reject', code: message.code, message: message.message, field: message.field });
          return;
        }
        // Fatal (wrong token, unknown job): retrying would be refused again.
        this.refused(new TesseraError(message.code, message.message, { field: message.field }));
        return;
      }
      case 'idle':
        this.emit({ type: 'idle', reason: message.reason });
        return;
    }
  }

  /** A refusal of an update settles its residual: a duplicate of one the coordinator holds counts as taken; a resend is pending still. */
  private settleFeedback(reject: { round?: number; code: ErrorCode; field?: string }): void {
    if (reject.round === undefined || reject.code === ErrorCode.IncompleteMessage || reject.field?.startsWith('chunk')) return;
    if (reject.code === ErrorCode.DuplicateUpdate) this.feedback.accepted(reject.round);
    else this.feedback.refused(reject.round);
  }

  /** The coordinator accepted this worker's update of `round` (an ack, or an assignment carrying it). */
  private acknowledged(round: number): void {
    if (this.unacknowledged?.round === round) this.unacknowledged = undefined;
    this.feedback.accepted(round);
    this.emit({ type: 'ack', round });
  }

  /** Either the answer to a fetch, or a broadcast of a new version (NATS): cached by hash either way. */
  private async receiveWeights(message: Weights): Promise<void> {
    const waiter = this.weightWaiters.get(message.hash);
    this.weightWaiters.delete(message.hash);
    if (!this.welcome || (!waiter && this.weights.has(message.hash))) return;
    try {
      const weights = decodeArrays(getCodec(message.codec), message.tensors, await this.shapes(), 'weights');
      this.cacheWeights(message.hash, weights);
      waiter?.resolve(weights);
    } catch (error) {
      waiter?.reject(error as Error);
    }
  }

  /** Runs queued assignments one after another. */
  private async work(): Promise<void> {
    while (this.queue.length > 0 && !this.stopping) {
      const assign = this.queue.shift()!;
      try {
        await this.compute(assign);
      } catch (error) {
        this.emit({
          type: 'reject',
          round: assign.round,
          code: (error as TesseraError).code ?? ErrorCode.Internal,
          message: `could not compute round ${assign.round}: ${(error as Error).message}`,
        });
      }
    }
  }

  /** The shapes of the welcome's model built for its dataset. */
  private shapes(): Promise<Record<string, number[]>> {
    return this.stepCompute.shapes(this.welcome!.model, this.dataShape());
  }

  private dataShape(): DataShape {
    const { imageShape, classes } = this.welcome!.dataset;
    return { imageShape, classes };
  }

  private async weightsFor(hash: string): Promise<NamedArrays> {
    const cached = this.weights.get(hash);
    if (cached) return cached;
    return new Promise<NamedArrays>((resolve, reject) => {
      this.weightWaiters.set(hash, { resolve, reject });
      this.send({ type: 'fetchWeights', hash });
    });
  }

  private async compute(assign: Assign): Promise<void> {
    const { model } = this.welcome!;
    const shapes = await this.shapes();
    const fetchStart = performance.now();
    const weights = await this.weightsFor(assign.weightsHash);
    const batch = await this.options.loadBatch(this.welcome!.dataset, assign.sampleIndices, assign.shardIds);
    const fetchMs = performance.now() - fetchStart;
    // A compute in this thread (a tab's) holds heartbeats back until it ends: one now restarts the coordinator's silence clock.
    this.send({ type: 'heartbeat' });
    const factor = this.options.throttleFactor;
    const computeStart = performance.now();
    const { grads, losses, numTensors } = await this.stepCompute.step({
      model,
      data: this.dataShape(),
      weightsHash: assign.weightsHash,
      weights,
      batch,
      seed: assign.seed,
      sampleIndices: assign.sampleIndices,
      localSteps: assign.localSteps,
      innerOptimizers: assign.innerOptimizers,
      throttle: Math.max(1, typeof factor === 'function' ? factor() : (factor ?? 1)),
    });
    // Stretched by the throttle, and with a thread's message passing: the time this worker takes for a step.
    const computeMs = performance.now() - computeStart;
    const codec = getCodec(assign.codec);
    if (!assign.errorFeedback) this.feedback.reset();
    const update: Update = {
      type: 'update',
      jobId: assign.jobId,
      round: assign.round,
      version: assign.version,
      weightsHash: assign.weightsHash,
      samples: batch.count,
      codec: assign.codec,
      tensors: assign.errorFeedback ? this.feedback.encode(codec, grads, shapes, assign.round) : codec.encode(arraysToTensors(grads, shapes)),
      losses,
      timing: { computeMs, fetchMs },
      workerTensors: numTensors,
    };
    this.unacknowledged = update;
    this.send(update);
    this.emit({ type: 'update', round: assign.round, samples: batch.count, computeMs, losses });
  }

  private send(message: Parameters<typeof pack>[0]): void {
    this.transport?.send(pack(message));
  }

  private emit(event: WorkerEvent): void {
    this.options.onEvent?.(event);
  }
}
