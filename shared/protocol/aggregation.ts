import * as check from './check.ts';
import { ErrorCode, TesseraError } from './errors.ts';
import { bytes, field, int, list, str, trusted } from './fields.ts';
import { message, messageParser, type MessageOf } from './message-schema.ts';
import { LIMITS, type Assign } from './messages.ts';

/*
 * What the coordinator and aggregator processes say to each other (subjects
 * in subjects.ts; the design in docs/aggregators.md). Workers
 * never see these messages.
 */

/** Bumped when these messages change; an aggregator of another version is not given rounds. */
export const AGGREGATION_PROTOCOL = 1;

/** Longest aggregator id (a subject token). */
export const MAX_AGGREGATOR_ID = 64;

/** Aggregators of one job at most: each has a partial per round to add, and the plan names them all. */
export const MAX_AGGREGATORS = 256;

/** Workers in one partial at most (its accepted and rejected lists). */
export const MAX_PARTIAL_WORKERS = 65_536;

/** Presence, every HELLO_EVERY_MS: an aggregator silent for AGGREGATOR_SILENCE_MS is taken as gone. */
export const HELLO_EVERY_MS = 1_000;
export const AGGREGATOR_SILENCE_MS = 3_500;

const aggregatorHello = message('aggregatorHello', {
  aggregatorId: str(MAX_AGGREGATOR_ID),
  protocol: int(),
});
export type AggregatorHello = MessageOf<typeof aggregatorHello>;

/** What an aggregator needs of the job to check and fold an update as the coordinator would. */
export interface PlanJob {
  shapes: Record<string, number[]>;
  /** The network of each tensor: each network is clipped and averaged on its own. */
  networkOf: Record<string, string>;
  lossNames: string[];
  /** training.maxGradNorm (0: off). */
  maxGradNorm: number;
  maxShare: number;
  clipNorm: number;
  /** Each network's clip scale τ from the round before (unused when clipNorm > 0). */
  tau: Record<string, number>;
}

/** One assignment of the round as the aggregators see it. */
export interface PlanAssignment {
  workerId: string;
  /** Its weight: the shares are water-filled over every assignment of the round, whoever receives the update. */
  samples: number;
  /** Set for NATS workers an aggregator owns: their connection id, the owner, and the assignment it checks the update against. */
  connectionId?: string;
  owner?: string;
  assign?: Assign;
}

/**
 * A round as the coordinator opened it, published before its assignments
 * leave (same connection, so aggregators hold it before any update can come).
 * With `fold` false the owners pass the round's updates on unfolded (`why`
 * says for what reason: a rule that does not fold, no τ yet).
 */
const roundPlan = message(
  'roundPlan',
  {
    jobId: trusted<string>(),
    round: trusted<number>(),
    fold: trusted<boolean>(),
    why: trusted<string | undefined>(),
    aggregators: trusted<string[]>(),
    deadlineMs: trusted<number>(),
    job: trusted<PlanJob>(),
    assignments: trusted<PlanAssignment[]>(),
  },
  { unknownKeys: 'ignore' },
);
export type RoundPlan = MessageOf<typeof roundPlan>;

/** Workers the coordinator counts as failed this round (they left): their owners stop waiting for them. */
const roundFailures = message(
  'roundFailures',
  { jobId: trusted<string>(), round: trusted<number>(), workerIds: trusted<string[]>() },
  { unknownKeys: 'ignore' },
);
export type RoundFailures = MessageOf<typeof roundFailures>;

/** The coordinator's messages to aggregators (checked as a worker checks its coordinator's: the type). */
export const parsePlanMessage: (value: unknown) => RoundPlan | RoundFailures = messageParser([roundPlan, roundFailures]);

/** One update an aggregator folded: what the coordinator keeps of an accepted update, without its tensors. */
export interface FoldedUpdate {
  workerId: string;
  samples: number;
  losses: Record<string, number>;
  computeMs: number;
  fetchMs: number;
  /** Assignment (as the aggregator received the plan) to arrival. */
  finishMs: number;
  bytes: number;
  workerTensors?: number;
  /** Networks whose rule clipped it, and its largest norm in clip radii. */
  clippedNetworks: string[];
  deviation: number;
}

/** An update an aggregator refused, with the code and field the worker was told. */
export interface RefusedUpdate {
  workerId: string;
  code: ErrorCode;
  message: string;
  field?: string;
}

/** One network's folded state besides its sums (see StreamingMean's MeanState). */
export interface PartialNetwork {
  share: number;
  scaledNorms: number[];
  foldedShares: number[];
}

const foldedUpdate = field((value, name): FoldedUpdate => {
  const entry = check.record(value, name, [
    'workerId',
    'samples',
    'losses',
    'computeMs',
    'fetchMs',
    'finishMs',
    'bytes',
    'workerTensors',
    'clippedNetworks',
    'deviation',
  ]) as Record<string, unknown>;
  const folded: FoldedUpdate = {
    workerId: check.string(entry.workerId, `${name}.workerId`, LIMITS.maxIdLength),
    samples: check.integer(entry.samples, `${name}.samples`, 1, LIMITS.maxBatch * 1024),
    losses: check.numberRecord(entry.losses, `${name}.losses`, 32),
    computeMs: check.finiteNumber(entry.computeMs, `${name}.computeMs`, 0),
    fetchMs: check.finiteNumber(entry.fetchMs, `${name}.fetchMs`, 0),
    finishMs: check.finiteNumber(entry.finishMs, `${name}.finishMs`, 0),
    bytes: check.integer(entry.bytes, `${name}.bytes`, 0),
    clippedNetworks: strings(entry.clippedNetworks, `${name}.clippedNetworks`, 16),
    deviation: check.finiteNumber(entry.deviation, `${name}.deviation`, 0),
  };
  if (entry.workerTensors !== undefined) folded.workerTensors = check.integer(entry.workerTensors, `${name}.workerTensors`, 0);
  return folded;
});

const refusedUpdate = field((value, name): RefusedUpdate => {
  const entry = check.record(value, name, ['workerId', 'code', 'message', 'field']) as Record<string, unknown>;
  const code = check.oneOf(entry.code, `${name}.code`, Object.values(ErrorCode));
  const refused: RefusedUpdate = {
    workerId: check.string(entry.workerId, `${name}.workerId`, LIMITS.maxIdLength),
    code,
    message: check.string(entry.message, `${name}.message`, 1024),
  };
  if (entry.field !== undefined) refused.field = check.string(entry.field, `${name}.field`, 256);
  return refused;
});

const partialNetwork = field((value, name): PartialNetwork => {
  const entry = check.record(value, name, ['share', 'scaledNorms', 'foldedShares']) as Record<string, unknown>;
  const scaledNorms = numbers(entry.scaledNorms, `${name}.scaledNorms`);
  const foldedShares = numbers(entry.foldedShares, `${name}.foldedShares`);
  if (foldedShares.length !== scaledNorms.length)
    throw new TesseraError(ErrorCode.InvalidMessage, `${scaledNorms.length} norms but ${foldedShares.length} shares`, { field: `${name}.foldedShares` });
  return { share: check.finiteNumber(entry.share, `${name}.share`, 0, 1 + 1e-9), scaledNorms, foldedShares };
});

/**
 * An aggregator's partial of one round: each tensor's float64 sum
 * Σ share·clip·gradient over the updates it folded (little-endian bytes),
 * each network's share total and norms, and an account of every update it
 * judged. Checked field by field: the coordinator adds it to the weights.
 */
const partial = message('partial', {
  jobId: str(LIMITS.maxIdLength),
  round: int(),
  aggregatorId: str(MAX_AGGREGATOR_ID),
  sums: field((value, name) => {
    const record = check.record(value, name) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(record).map(([key, bin]) => [key, bytes(LIMITS.maxTensorBytes * 2).parse(bin, `${name}.${key}`)]));
  }),
  networks: field((value, name) => {
    const record = check.record(value, name) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(record).map(([key, entry]) => [key, partialNetwork.parse(entry, `${name}.${key}`)]));
  }),
  accepted: field((value, name) =>
    list<unknown>(MAX_PARTIAL_WORKERS)
      .parse(value, name)
      .map((entry, k) => foldedUpdate.parse(entry, `${name}[${k}]`)),
  ),
  refused: field((value, name) =>
    list<unknown>(MAX_PARTIAL_WORKERS)
      .parse(value, name)
      .map((entry, k) => refusedUpdate.parse(entry, `${name}[${k}]`)),
  ),
});
export type PartialMessage = MessageOf<typeof partial>;

/** The aggregators' messages to the coordinator, checked at its door. */
export const parseAggregatorMessage: (value: unknown) => AggregatorHello | PartialMessage = messageParser([aggregatorHello, partial]);

function numbers(value: unknown, name: string): number[] {
  return list<unknown>(MAX_PARTIAL_WORKERS)
    .parse(value, name)
    .map((entry, k) => check.finiteNumber(entry, `${name}[${k}]`, 0));
}

function strings(value: unknown, name: string, maxLength: number): string[] {
  return list<unknown>(maxLength)
    .parse(value, name)
    .map((entry, k) => check.string(entry, `${name}[${k}]`, 64));
}

/** A float64 sum as it travels (little-endian, as every machine that runs this is). */
export function sumBytes(sum: Float64Array): Uint8Array {
  return new Uint8Array(sum.buffer, sum.byteOffset, sum.byteLength);
}

/** A float64 sum from its bytes (copied: the bytes may be a view at any offset); `length` elements or a TesseraError on `name`. */
export function sumOf(bin: Uint8Array, length: number, name: string): Float64Array {
  if (bin.byteLength !== length * 8)
    throw new TesseraError(ErrorCode.TensorMismatch, `${bin.byteLength} bytes, expected ${length * 8} (${length} float64)`, { field: name });
  const sum = new Float64Array(length);
  new Uint8Array(sum.buffer).set(bin);
  for (let i = 0; i < length; i++) if (!Number.isFinite(sum[i])) throw new TesseraError(ErrorCode.NonFinite, `non-finite value at index ${i}`, { field: name });
  return sum;
}

/** The decoder budget of an aggregator's message: one byte string per tensor, a few values per folded update. */
export function aggregatorBudget(maxBytes: number, tensors: number, workers: number) {
  return {
    maxBytes,
    maxElements: 64 + 4 * tensors + 32 * workers + 96 * workers,
    maxDepth: 5,
    maxStringBytes: 4096,
    maxTotalStringBytes: 1024 * (16 + workers),
    maxBinBytes: maxBytes,
  };
}
