import * as check from './check.ts';
import { ErrorCode, TesseraError } from './errors.ts';

/** Bumped on any change to a message's shape; hello carries it. */
export const PROTOCOL_VERSION = 1;

/** Upper bounds at the door, so a hostile peer cannot make the coordinator allocate without limit. */
export const LIMITS = {
  /** Encoded tensors of one update or one weights message. */
  maxTensorBytes: 256 * 1024 * 1024,
  /**
   * Examples in one assignment, and in one fetch of examples by a browser worker (shared/data/examples-wire.ts): the
   * same limit, so any assignment can be fetched in one request. 4,096 28x28 images are 12.8 MB of float32 pixels;
   * the runner never deals a worker more (coordinator/job/scheduler.ts), local mode's inner steps included.
   */
  maxBatch: 4_096,
  maxIdLength: 128,
  /** A hello, the only message a connection may send before it is welcomed: a token of 4,096 characters fits. */
  maxHelloBytes: 8 * 1024,
  /** Any message but an update (heartbeat, fetchWeights, leave). */
  maxControlMessageBytes: 16 * 1024,
} as const;

export type WorkerKind = 'node' | 'browser';

// ---- worker -> coordinator -------------------------------------------------

/** First message on a connection: who the worker is and what it runs on. */
export interface Hello {
  type: 'hello';
  protocol: number;
  kind: WorkerKind;
  backend: string;
  device: string;
  /** Join this job; the coordinator picks its default job when absent. */
  jobId?: string;
  /** Set when reconnecting, so the coordinator keeps the worker's identity and counters. */
  workerId?: string;
  /** A display name (host name, "Firefox on Linux", ...). */
  name?: string;
  /** A first speed estimate, before any round has been timed. */
  samplesPerSecond?: number;
  /** The shared worker token, or a join token the admin API issued for this job. */
  token?: string;
  /** The secret the welcome for `workerId` carried: resuming a session needs it. */
  resumeSecret?: string;
}

/** Asks for the weights with this content hash (sent once per version: workers cache by hash). */
export interface FetchWeights {
  type: 'fetchWeights';
  hash: string;
}

/** The result of one assignment: gradients (or a weight delta) for every trainable tensor. */
export interface Update {
  type: 'update';
  jobId: string;
  round: number;
  /** The weights version the gradients were computed against. */
  version: number;
  /**
   * Content hash of those weights, as the assignment named them: ties the
   * gradient to the weights it was computed from (a gradient replayed from
   * another version names another hash and is refused).
   */
  weightsHash: string;
  /** How many samples the update covers: its weight in the average. */
  samples: number;
  codec: string;
  /** Named tensors encoded by `codec`. */
  tensors: Uint8Array;
  /** Losses by name (`d`, `g`, `mse`, ...), averaged over the samples. */
  losses: Record<string, number>;
  timing: { computeMs: number; fetchMs: number };
  /** Live tfjs tensors on the worker after computing: flat over a run, or the worker leaks. */
  workerTensors?: number;
}

export interface Heartbeat {
  type: 'heartbeat';
}

export interface Leave {
  type: 'leave';
  reason: string;
}

export type WorkerMessage = Hello | FetchWeights | Update | Heartbeat | Leave;

// ---- coordinator -> worker -------------------------------------------------

/** The job's dataset as a worker needs it. */
export interface WelcomeDataset {
  id: string;
  /** [height, width, channels] of its images: the worker builds the model for them. */
  imageShape: [number, number, number];
  /** Classes of its labels (what a conditional model is conditioned on); 0 when unlabelled. */
  classes: number;
  /** A folder dataset's shards: the content hash of each (index = shard id), fetched by hash from /api/shards/{hash}. */
  shardHashes?: string[];
}

export interface Welcome {
  type: 'welcome';
  workerId: string;
  jobId: string;
  /** The model the job trains and its resolved config: the worker builds the same spec. */
  model: { id: string; config: Record<string, unknown> };
  dataset: WelcomeDataset;
  heartbeatMs: number;
  /**
   * This session's secret (32 random bytes, base64url): a later hello naming
   * `workerId` must carry it. A new one comes with every welcome.
   */
  resumeSecret: string;
  /** Authorises this session's dataset fetches over HTTP (see shared/protocol/session-auth.ts). */
  dataToken: string;
}

/** Work for one round. */
export interface Assign {
  type: 'assign';
  jobId: string;
  round: number;
  version: number;
  weightsHash: string;
  /** Dataset indices of this worker's batch, drawn from its shards. */
  sampleIndices: number[];
  shardIds: number[];
  /** The round's seed (every worker of the round gets the same): with an example's index it seeds that example's noise (shared/training/noise.ts). */
  seed: number;
  codec: string;
  /** Milliseconds the worker has before the round closes without it. */
  deadlineMs: number;
  /**
   * Local-update mode: take this many inner optimizer steps over parts of the
   * batch and send the weight delta (start minus end) instead of a gradient.
   * Absent or 1 in synchronous mode.
   */
  localSteps?: number;
  /** The inner optimizer per network, in local-update mode. */
  innerOptimizers?: Record<string, { learningRate: number; beta1: number; beta2: number; epsilon: number }>;
}

export interface Weights {
  type: 'weights';
  hash: string;
  version: number;
  codec: string;
  tensors: Uint8Array;
}

export interface Ack {
  type: 'ack';
  round: number;
}

/** An update (or another message) was refused; the worker stays connected. */
export interface Reject {
  type: 'reject';
  round?: number;
  code: ErrorCode;
  message: string;
  field?: string;
}

/** A fatal refusal: the connection is closed after it. */
export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
  field?: string;
}

/** No work now, and why (waiting for workers, job paused, job finished). */
export interface Idle {
  type: 'idle';
  reason: string;
}

export type CoordinatorMessage = Welcome | Assign | Weights | Ack | Reject | ErrorMessage | Idle;

// ---- validation at the door --------------------------------------------------

const WORKER_TYPES = ['hello', 'fetchWeights', 'update', 'heartbeat', 'leave'] as const;

/** Validates a decoded message from a worker; throws a TesseraError naming the field at fault. */
export function parseWorkerMessage(value: unknown): WorkerMessage {
  const message = check.record(value, '');
  const type = message.type;
  if (typeof type !== 'string' || !(WORKER_TYPES as readonly string[]).includes(type)) {
    throw new TesseraError(ErrorCode.UnknownMessageType, `unknown message type ${JSON.stringify(String(type)).slice(0, 60)}`, { field: 'type' });
  }
  switch (type) {
    case 'hello': {
      check.record(message, '', ['type', 'protocol', 'kind', 'backend', 'device', 'jobId', 'workerId', 'name', 'samplesPerSecond', 'token', 'resumeSecret']);
      const protocol = check.integer(message.protocol, 'protocol', 0, 1_000_000);
      if (protocol !== PROTOCOL_VERSION) {
        throw new TesseraError(ErrorCode.ProtocolMismatch, `coordinator speaks protocol ${PROTOCOL_VERSION}, worker ${protocol}`, { field: 'protocol' });
      }
      const hello: Hello = {
        type,
        protocol,
        kind: check.oneOf(message.kind, 'kind', ['node', 'browser'] as const),
        backend: check.string(message.backend, 'backend', 64),
        device: check.string(message.device, 'device', 256),
      };
      const jobId = check.optionalString(message.jobId, 'jobId', LIMITS.maxIdLength);
      const workerId = check.optionalString(message.workerId, 'workerId', LIMITS.maxIdLength);
      const name = check.optionalString(message.name, 'name', 256);
      const token = check.optionalString(message.token, 'token', 4096);
      const resumeSecret = check.optionalString(message.resumeSecret, 'resumeSecret', 128);
      if (jobId !== undefined) hello.jobId = jobId;
      if (workerId !== undefined) hello.workerId = workerId;
      if (name !== undefined) hello.name = name;
      if (token !== undefined) hello.token = token;
      if (resumeSecret !== undefined) hello.resumeSecret = resumeSecret;
      if (message.samplesPerSecond !== undefined) hello.samplesPerSecond = check.finiteNumber(message.samplesPerSecond, 'samplesPerSecond', 0);
      return hello;
    }
    case 'fetchWeights':
      check.record(message, '', ['type', 'hash']);
      return { type, hash: check.string(message.hash, 'hash', 128) };
    case 'update': {
      check.record(message, '', ['type', 'jobId', 'round', 'version', 'weightsHash', 'samples', 'codec', 'tensors', 'losses', 'timing', 'workerTensors']);
      const timing = check.record(message.timing, 'timing', ['computeMs', 'fetchMs']);
      return {
        type,
        jobId: check.string(message.jobId, 'jobId', LIMITS.maxIdLength),
        round: check.integer(message.round, 'round'),
        version: check.integer(message.version, 'version'),
        weightsHash: check.string(message.weightsHash, 'weightsHash', 128),
        samples: check.integer(message.samples, 'samples', 1, LIMITS.maxBatch * 1024),
        codec: check.string(message.codec, 'codec', 32),
        tensors: check.bytes(message.tensors, 'tensors', LIMITS.maxTensorBytes),
        losses: check.numberRecord(message.losses, 'losses'),
        timing: {
          computeMs: check.finiteNumber(timing.computeMs, 'timing.computeMs', 0),
          fetchMs: check.finiteNumber(timing.fetchMs, 'timing.fetchMs', 0),
        },
        ...(message.workerTensors === undefined ? {} : { workerTensors: check.integer(message.workerTensors, 'workerTensors', 0) }),
      };
    }
    case 'heartbeat':
      return { type };
    case 'leave':
      return { type, reason: check.string(message.reason ?? '', 'reason', 256) };
  }
  throw new TesseraError(ErrorCode.UnknownMessageType, 'unreachable', { field: 'type' });
}

const COORDINATOR_TYPES = ['welcome', 'assign', 'weights', 'ack', 'reject', 'error', 'idle'] as const;

/**
 * Checks a decoded message from the coordinator. Workers trust their
 * coordinator more than it trusts them, so this checks the type and the fields
 * a worker acts on, not every bound.
 */
export function parseCoordinatorMessage(value: unknown): CoordinatorMessage {
  const message = check.record(value, '');
  const type = message.type;
  if (typeof type !== 'string' || !(COORDINATOR_TYPES as readonly string[]).includes(type)) {
    throw new TesseraError(ErrorCode.UnknownMessageType, `unknown message type ${JSON.stringify(String(type)).slice(0, 60)}`, { field: 'type' });
  }
  switch (type) {
    case 'assign':
      check.integer(message.round, 'round');
      check.integer(message.version, 'version');
      check.string(message.weightsHash, 'weightsHash', 128);
      check.integerArray(message.sampleIndices, 'sampleIndices', LIMITS.maxBatch);
      check.integer(message.seed, 'seed', 0, 2 ** 32 - 1);
      if (message.localSteps !== undefined) check.integer(message.localSteps, 'localSteps', 1, 10_000);
      break;
    case 'weights':
      check.string(message.hash, 'hash', 128);
      check.bytes(message.tensors, 'tensors', LIMITS.maxTensorBytes);
      break;
    case 'welcome': {
      check.string(message.workerId, 'workerId', LIMITS.maxIdLength);
      check.record(message.model, 'model');
      const dataset = check.record(message.dataset, 'dataset');
      check.integerArray(dataset.imageShape, 'dataset.imageShape', 3, 1, 4096);
      check.integer(dataset.classes, 'dataset.classes');
      if (dataset.shardHashes !== undefined && (!Array.isArray(dataset.shardHashes) || dataset.shardHashes.length > 4096))
        check.oneOf('not a list', 'dataset.shardHashes', ['a list of up to 4096 hashes']);
      check.string(message.resumeSecret, 'resumeSecret', 128);
      check.string(message.dataToken, 'dataToken', 128);
      break;
    }
  }
  return message as unknown as CoordinatorMessage;
}
