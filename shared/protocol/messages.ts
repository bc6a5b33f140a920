import * as check from './check.ts';
import { ErrorCode, TesseraError } from './errors.ts';
import { bytes, field, int, intArray, list, num, numberRecord, oneOf, optional, str, trusted, withDefault, type FieldValue } from './fields.ts';
import { message, messageParser, object, type MessageOf } from './message-schema.ts';

/**
 * Bumped on any change to a message's shape; hello carries it, and a worker of
 * another version is refused (PROTOCOL_MISMATCH) rather than misreading. 2: the
 * welcome names the job's dataset (shape, classes, a folder dataset's shard
 * hashes), which a version-1 worker would ignore and train on MNIST instead;
 * heartbeat and leave refuse unknown keys. 3: an assignment may carry the ack
 * of the worker's last update (`acknowledges`), which a version-2 worker would
 * never see.
 */
export const PROTOCOL_VERSION = 3;

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

/*
 * Each message is declared once (shared/protocol/message-schema.ts, its fields
 * from fields.ts, the checks configs use too): its type,
 * its parser and its keys all come from the declaration. Fields are checked in
 * the order declared.
 */

const workerKind = oneOf(['node', 'browser']);
export type WorkerKind = FieldValue<typeof workerKind>;

/** An optional string, null read as absent (a browser may send null for "none"). */
const optionalStr = (maxLength: number) => optional(str(maxLength), { nullIsAbsent: true });

// ---- worker -> coordinator -------------------------------------------------

/** First message on a connection: who the worker is and what it runs on. */
const hello = message('hello', {
  /** PROTOCOL_VERSION: another version is PROTOCOL_MISMATCH. */
  protocol: field((value, name) => {
    const protocol = check.integer(value, name, 0, 1_000_000);
    if (protocol !== PROTOCOL_VERSION) {
      throw new TesseraError(ErrorCode.ProtocolMismatch, `coordinator speaks protocol ${PROTOCOL_VERSION}, worker ${protocol}`, { field: name });
    }
    return protocol;
  }),
  kind: workerKind,
  backend: str(64),
  device: str(256),
  /** Join this job; the coordinator picks its default job when absent. */
  jobId: optionalStr(LIMITS.maxIdLength),
  /** Set when reconnecting, so the coordinator keeps the worker's identity and counters. */
  workerId: optionalStr(LIMITS.maxIdLength),
  /** A display name (host name, "Firefox on Linux", ...). */
  name: optionalStr(256),
  /** The shared worker token, or a join token the admin API issued for this job. */
  token: optionalStr(4096),
  /** The secret the welcome for `workerId` carried: resuming a session needs it. */
  resumeSecret: optionalStr(128),
  /** A first speed estimate, before any round has been timed. */
  samplesPerSecond: optional(num(0)),
});
export type Hello = MessageOf<typeof hello>;

/** Asks for the weights with this content hash (sent once per version: workers cache by hash). */
const fetchWeights = message('fetchWeights', { hash: str(128) });
export type FetchWeights = MessageOf<typeof fetchWeights>;

/** The result of one assignment: gradients (or a weight delta) for every trainable tensor. */
const update = message('update', {
  jobId: str(LIMITS.maxIdLength),
  round: int(),
  /** The weights version the gradients were computed against. */
  version: int(),
  /**
   * Content hash of those weights, as the assignment named them: ties the
   * gradient to the weights it was computed from (a gradient replayed from
   * another version names another hash and is refused).
   */
  weightsHash: str(128),
  /** How many samples the update covers: its weight in the average. */
  samples: int(1, LIMITS.maxBatch * 1024),
  codec: str(32),
  /** Named tensors encoded by `codec`. */
  tensors: bytes(LIMITS.maxTensorBytes),
  /** Losses by name (`d`, `g`, `mse`, ...), averaged over the samples. */
  losses: numberRecord(),
  timing: object({ computeMs: num(0), fetchMs: num(0) }),
  /** Live tfjs tensors on the worker after computing: flat over a run, or the worker leaks. */
  workerTensors: optional(int(0)),
});
export type Update = MessageOf<typeof update>;

const heartbeat = message('heartbeat', {});
export type Heartbeat = MessageOf<typeof heartbeat>;

/** The worker goes; its reason reads as '' when absent. */
const leave = message('leave', { reason: withDefault(str(256), '') });
export type Leave = MessageOf<typeof leave>;

/** The messages a worker sends, by type. */
export const WORKER_MESSAGES = [hello, fetchWeights, update, heartbeat, leave] as const;

export type WorkerMessage = MessageOf<(typeof WORKER_MESSAGES)[number]>;

// ---- coordinator -> worker -------------------------------------------------

/*
 * Workers trust their coordinator more than it trusts them: its messages are
 * checked for the fields a worker acts on, not every bound. Fields declared
 * `trusted` are taken as they come, and keys no field declares are dropped,
 * not refused.
 */
const loose = { unknownKeys: 'ignore' } as const;

/** The job's dataset as a worker needs it. */
const welcomeDataset = object(
  {
    id: trusted<string>(),
    /** [height, width, channels] of its images: the worker builds the model for them. */
    imageShape: field((value, name) => check.integerArray(value, name, 3, 1, 4096) as [number, number, number]),
    /** Classes of its labels (what a conditional model is conditioned on); 0 when unlabelled. */
    classes: int(),
    /** A folder dataset's shards: the content hash of each (index = shard id), fetched by hash from /api/shards/{hash}. */
    shardHashes: optional(list<string>(4096)),
  },
  loose,
);
export type WelcomeDataset = FieldValue<typeof welcomeDataset>;

const welcome = message(
  'welcome',
  {
    workerId: str(LIMITS.maxIdLength),
    jobId: trusted<string>(),
    /** The model the job trains and its resolved config: the worker builds the same spec. */
    model: object({ id: trusted<string>(), config: trusted<Record<string, unknown>>() }, loose),
    dataset: welcomeDataset,
    heartbeatMs: trusted<number>(),
    /**
     * This session's secret (32 random bytes, base64url): a later hello naming
     * `workerId` must carry it. A new one comes with every welcome.
     */
    resumeSecret: str(128),
    /** Authorises this session's dataset fetches over HTTP (see shared/protocol/session-auth.ts). */
    dataToken: str(128),
  },
  loose,
);
export type Welcome = MessageOf<typeof welcome>;

/** Work for one round. */
const assign = message(
  'assign',
  {
    jobId: trusted<string>(),
    round: int(),
    version: int(),
    weightsHash: str(128),
    /** Dataset indices of this worker's batch, drawn from its shards. */
    sampleIndices: intArray(LIMITS.maxBatch),
    shardIds: trusted<number[]>(),
    /** The round's seed (every worker of the round gets the same): with an example's index it seeds that example's noise (shared/training/noise.ts). */
    seed: int(0, 2 ** 32 - 1),
    codec: trusted<string>(),
    /**
     * Error feedback (training.errorFeedback, sync mode): the worker adds to this update what its codec's rounding took
     * from its last ones (shared/worker/error-feedback.ts). Absent: off, as a worker that does not know the key behaves.
     */
    errorFeedback: optional(trusted<boolean>()),
    /** Milliseconds the worker has before the round closes without it. */
    deadlineMs: trusted<number>(),
    /**
     * The round of this worker's update that was accepted, when its ack rides
     * on this assignment instead of coming alone: a round the coordinator
     * folds in its fold thread (training.foldThreadFrom workers or more)
     * answers its updates when it closes, with each worker's next assignment.
     */
    acknowledges: optional(int()),
    /**
     * Local-update mode: take this many inner optimizer steps over parts of the
     * batch and send the weight delta (start minus end) instead of a gradient.
     * Absent or 1 in synchronous mode.
     */
    localSteps: optional(int(1, 10_000)),
    /** The inner optimizer per network, in local-update mode. */
    innerOptimizers: optional(trusted<Record<string, { learningRate: number; beta1: number; beta2: number; epsilon: number }>>()),
  },
  loose,
);
export type Assign = MessageOf<typeof assign>;

const weights = message('weights', { hash: str(128), version: trusted<number>(), codec: trusted<string>(), tensors: bytes(LIMITS.maxTensorBytes) }, loose);
export type Weights = MessageOf<typeof weights>;

const ack = message('ack', { round: trusted<number>() }, loose);
export type Ack = MessageOf<typeof ack>;

/** An update (or another message) was refused; the worker stays connected. */
const reject = message(
  'reject',
  { round: optional(trusted<number>()), code: trusted<ErrorCode>(), message: trusted<string>(), field: optional(trusted<string>()) },
  loose,
);
export type Reject = MessageOf<typeof reject>;

/** A fatal refusal: the connection is closed after it. */
const error = message('error', { code: trusted<ErrorCode>(), message: trusted<string>(), field: optional(trusted<string>()) }, loose);
export type ErrorMessage = MessageOf<typeof error>;

/** No work now, and why (waiting for workers, job paused, job finished). */
const idle = message('idle', { reason: trusted<string>() }, loose);
export type Idle = MessageOf<typeof idle>;

/** The messages the coordinator sends, by type. */
export const COORDINATOR_MESSAGES = [welcome, assign, weights, ack, reject, error, idle] as const;

export type CoordinatorMessage = MessageOf<(typeof COORDINATOR_MESSAGES)[number]>;

// ---- validation at the door --------------------------------------------------

/** Validates a decoded message from a worker; throws a TesseraError naming the field at fault. */
export const parseWorkerMessage: (value: unknown) => WorkerMessage = messageParser(WORKER_MESSAGES);

/**
 * Checks a decoded message from the coordinator: the type, and the fields a
 * worker acts on (the others are declared `trusted` above).
 */
export const parseCoordinatorMessage: (value: unknown) => CoordinatorMessage = messageParser(COORDINATOR_MESSAGES);
