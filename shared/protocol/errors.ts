/**
 * Error codes shared by the coordinator and every worker. A code travels in
 * `error` and `reject` messages, so both sides name a failure the same way.
 */
export enum ErrorCode {
  /** The bytes of a message could not be decoded at all (truncated, not msgpack). */
  DecodeFailed = 'DECODE_FAILED',
  /** A message decoded but a field is missing or has the wrong type or value. */
  InvalidMessage = 'INVALID_MESSAGE',
  /** The message type is not one this side accepts. */
  UnknownMessageType = 'UNKNOWN_MESSAGE_TYPE',
  /** The peer speaks a protocol version this side does not. */
  ProtocolMismatch = 'PROTOCOL_MISMATCH',
  /** A codec id that no codec is registered for. */
  UnknownCodec = 'UNKNOWN_CODEC',
  /** A model id that no ModelSpec is registered for. */
  UnknownModel = 'UNKNOWN_MODEL',
  /** No job with that id. */
  UnknownJob = 'UNKNOWN_JOB',
  /** The job config has an unknown key or a value out of range. */
  InvalidConfig = 'INVALID_CONFIG',
  /** An update for a round that is not open (closed already, or not yet started). */
  WrongRound = 'WRONG_ROUND',
  /** An update computed against weights other than the round's version. */
  StaleVersion = 'STALE_VERSION',
  /** An update from a worker that was not assigned work in that round. */
  NotAssigned = 'NOT_ASSIGNED',
  /** A second update from the same worker for the same round. */
  DuplicateUpdate = 'DUPLICATE_UPDATE',
  /** A tensor is missing, extra, or has the wrong shape or dtype. */
  TensorMismatch = 'TENSOR_MISMATCH',
  /** A tensor holds NaN or Infinity. */
  NonFinite = 'NON_FINITE',
  /** A gradient's norm is above the job's limit. */
  NormTooLarge = 'NORM_TOO_LARGE',
  /** Some chunks of a chunked message never arrived; the sender should send it again. */
  IncompleteMessage = 'INCOMPLETE_MESSAGE',
  /** A message is larger than the limit for its kind. */
  TooLarge = 'TOO_LARGE',
  /** Too many messages or bytes per second from one connection, or too many connections waiting to say hello. */
  RateLimited = 'RATE_LIMITED',
  /** Weights requested by a hash the coordinator does not hold. */
  UnknownWeights = 'UNKNOWN_WEIGHTS',
  /** No worker with that id in the job (admin routes on one worker). */
  UnknownWorker = 'UNKNOWN_WORKER',
  /** A worker sent work before saying hello. */
  NotRegistered = 'NOT_REGISTERED',
  /** Missing or wrong credentials. */
  Unauthorized = 'UNAUTHORIZED',
  /** The job is paused or stopped and takes no work. */
  JobNotRunning = 'JOB_NOT_RUNNING',
  /** A checkpoint file is missing, unreadable or does not match the job. */
  BadCheckpoint = 'BAD_CHECKPOINT',
  /** An output the job has not written yet (samples, exported model, checkpoint): ask again after a few rounds. */
  NotReady = 'NOT_READY',
  /** Something failed on the coordinator that is not the worker's fault. */
  Internal = 'INTERNAL',
}

/** An error with a code, the field at fault (a dotted path) and the cause. */
export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  /** The message as given, without the ` (field: …)` that `message` ends with: what travels, so a TesseraError rebuilt from it says the field once. */
  readonly detail: string;

  constructor(code: ErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(options.field ? `${message} (field: ${options.field})` : message, { cause: options.cause });
    this.name = 'TesseraError';
    this.code = code;
    this.field = options.field;
    this.detail = message;
  }

  /** The form that travels in an `error` or `reject` message, or an API's error body: the field beside the message, not in it. */
  toWire(): { code: ErrorCode; message: string; field?: string } {
    return this.field === undefined ? { code: this.code, message: this.detail } : { code: this.code, message: this.detail, field: this.field };
  }
}

/** True for a TesseraError (also across module copies, by its code). */
export function isTesseraError(value: unknown): value is TesseraError {
  return (
    value instanceof TesseraError || (value instanceof Error && typeof (value as TesseraError).code === 'string' && (value as Error).name === 'TesseraError')
  );
}

/** Throws an InvalidMessage error naming the field, the expected and the actual value. */
export function invalid(field: string, expected: string, actual: unknown, code = ErrorCode.InvalidMessage): never {
  throw new TesseraError(code, `expected ${expected}, got ${describe(actual)}`, { field });
}

/** A short description of a value for error messages (never the whole value). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as ArrayBufferView).byteLength} bytes)`;
  if (Array.isArray(value)) return `array(${value.length})`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'object';
  return String(value);
}
