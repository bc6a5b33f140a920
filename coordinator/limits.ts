import { listCodecs } from '../shared/codec/index.ts';
import type { DecodeBudget } from '../shared/codec/untrusted.ts';
import { LIMITS } from '../shared/protocol/messages.ts';
import { fields, parseConfig, type Schema } from '../shared/protocol/schema.ts';

/**
 * How much an unknown peer may send before anyone trusts it, and how much a
 * worker may send after. Each value says why it is what it is; HubOptions
 * overrides any of them (tests shorten the deadlines).
 */
export interface DoorLimits {
  /** Bytes of one frame until hello is accepted: a hello is a few hundred bytes, with a token up to 4 kB. */
  preHelloFrameBytes: number;
  /** Bytes of a message other than an update (heartbeat, fetchWeights, leave, another hello). */
  controlMessageBytes: number;
  /** Bytes an update may carry beyond the most its tensors can take: its other fields (losses, timing, ids). */
  updateMarginBytes: number;
  /** A connection that has not said hello by then is closed. */
  helloDeadlineMs: number;
  /** Connections waiting for their hello from one address; more are closed at once. */
  maxPreHelloPerAddress: number;
  /** Connections waiting for their hello in all. */
  maxPreHelloTotal: number;
  /** Sustained messages per second of one connection. */
  messagesPerSecond: number;
  /** Messages one connection may send at once above the sustained rate. */
  messageBurst: number;
  /** Sustained bytes per second of one connection. */
  bytesPerSecond: number;
  /** Refusals for rate a connection may collect (one back per second) before it is closed. */
  rateStrikes: number;
  /** A session whose worker left is forgotten when it has not come back by then. */
  sessionGraceMs: number;
  /** Sessions of departed workers kept at most (the oldest are forgotten first), so hello-and-leave cannot fill memory. */
  maxAwaySessions: number;
}

export const DEFAULT_DOOR_LIMITS: Readonly<DoorLimits> = Object.freeze({
  preHelloFrameBytes: LIMITS.maxHelloBytes,
  controlMessageBytes: LIMITS.maxControlMessageBytes,
  // Losses (32 names), timing, ids and msgpack headers take under 4 kB; 64 kB leaves room for fields added later.
  updateMarginBytes: 64 * 1024,
  // A worker says hello as soon as its socket opens; 10 s covers a slow phone on a bad link.
  helloDeadlineMs: 10_000,
  // Browsers behind one NAT (a classroom) open their sockets at once, but each waits for hello only a moment.
  maxPreHelloPerAddress: 32,
  maxPreHelloTotal: 1_024,
  // A worker sends a heartbeat, a fetch and an update per round. A small model on a fast worker runs 10-20 rounds/s
  // (measured: the attack test's 4 in-process workers, which 20/s starved), so 200/s with a burst of 400; a flood of
  // large frames is held by bytesPerSecond, small ones cost the decoder microseconds each.
  messagesPerSecond: 200,
  messageBurst: 400,
  // Default models send ~3 MB per f32 update; 16 MB/s is an update of a 4 M-parameter model every second. The burst
  // is a second of this rate, and always admits two whole updates.
  bytesPerSecond: 16 * 1024 * 1024,
  rateStrikes: 20,
  // A worker that lost its link reconnects within seconds (its backoff stops at 10 s); 5 min also spans a coordinator-side blip.
  sessionGraceMs: 5 * 60_000,
  // ~2 kB each: 10,000 is 20 MB at most.
  maxAwaySessions: 10_000,
});

const MAX_SETTING = Number.MAX_SAFE_INTEGER;
const schema: Schema<DoorLimits> = Object.fromEntries(
  Object.entries(DEFAULT_DOOR_LIMITS).map(([key, value]) => [
    key,
    fields.integer(value, key === 'preHelloFrameBytes' || key === 'controlMessageBytes' ? 256 : 1, MAX_SETTING),
  ]),
) as unknown as Schema<DoorLimits>;

/** Reads limit overrides (e.g. the coordinator's --door-limits JSON): unknown keys and non-positive values are errors naming the key. */
export function parseDoorLimits(raw: unknown): DoorLimits {
  return parseConfig(schema, raw, 'doorLimits');
}

/**
 * The decoder budget of one protocol message of at most `maxBytes`. Every
 * message is a flat map with one level below (timing, losses): an update,
 * the largest, has about 90 values with 32 losses; tensors travel as one
 * byte string and are decoded with their own budget (TENSOR_DECODE_BUDGET).
 */
export function messageBudget(maxBytes: number): DecodeBudget {
  return {
    maxBytes,
    maxElements: 256,
    maxDepth: 3,
    // A token (4,096 characters) is the longest string of any message.
    maxStringBytes: 4096,
    maxTotalStringBytes: 16 * 1024,
    maxBinBytes: maxBytes,
  };
}

/**
 * The most bytes an update of tensors with these shapes can take, whichever
 * registered codec it uses: the frame limit of a worker of that job.
 */
export function updateFrameLimit(shapes: Readonly<Record<string, readonly number[]>>, marginBytes: number): number {
  const tensors = Math.max(...listCodecs().map((codec) => codec.maxEncodedBytes(shapes)));
  return Math.min(tensors, LIMITS.maxTensorBytes) + marginBytes;
}

/**
 * A token bucket: `capacity` tokens, refilled at `perSecond`; a spend that
 * does not fit is refused whole and takes nothing.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private capacity: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.updatedAt = now;
  }

  /** Takes `amount` tokens if there are that many now; false (and nothing taken) otherwise. */
  take(amount: number, now: number): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
    if (amount > this.tokens) return false;
    this.tokens -= amount;
    return true;
  }

  /** Raises (or lowers) the capacity, keeping the tokens there are. */
  resize(capacity: number): void {
    this.capacity = capacity;
    this.tokens = Math.min(this.tokens, capacity);
  }
}
