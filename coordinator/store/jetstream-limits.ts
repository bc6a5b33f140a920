import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

const MiB = 1024 * 1024;

/** The limits of a job's buckets and stream; defaults in JETSTREAM_LIMITS, each with its reason. */
export interface JetStreamLimits {
  maxCheckpointBytes: number;
  maxRoundLogBytes: number;
  maxRoundLineBytes: number;
  maxStatusBytes: number;
  maxStatusValueBytes: number;
  statusHistory: number;
}

export const JETSTREAM_LIMITS: JetStreamLimits = {
  /**
   * The largest checkpoint (weights, two Adam moments, EMA): a dcgan's is
   * about 10 MB, so room for models 50 times larger. The bucket's max_bytes is
   * twice this: the old object is purged only once the new one is whole.
   */
  maxCheckpointBytes: 512 * MiB,
  /**
   * The round log: a line is about 1 KB with a few workers, 50 KB with 500, so
   * this is a million small rounds. When full, appends are refused (discard
   * new) and reported; old rounds are never dropped silently.
   */
  maxRoundLogBytes: 1024 * MiB,
  /** One round-log line is one message: at most the servers' default max_payload (the smaller of the two is used). */
  maxRoundLineBytes: 1 * MiB,
  /** The status bucket: the config and the status, a few KB each, times the history. */
  maxStatusBytes: 8 * MiB,
  /** A config with a model module's own keys is still a few KB; this refuses a runaway one. */
  maxStatusValueBytes: 256 * 1024,
  /** The status's last transitions, for `nats kv history` (a KV bucket keeps at most 64). */
  statusHistory: 10,
};

/** Replicas JetStream supports for a stream (R1 to R5); R3 is what its docs recommend for production. */
export const MAX_REPLICAS = 5;

/**
 * The replicas of every bucket and stream: the one asked for, else min(3,
 * servers in the cluster), counted from the client URLs the server
 * advertises (`connect_urls` of its INFO, itself included). A cluster that
 * does not advertise them (`no_advertise`) counts as one server: give
 * `--store-replicas 3` there.
 */
export function replicasFor(asked: number | undefined, advertisedUrls: readonly string[] | undefined): number {
  if (asked !== undefined) {
    if (!Number.isInteger(asked) || asked < 1 || asked > MAX_REPLICAS) {
      throw new TesseraError(ErrorCode.InvalidConfig, `--store-replicas must be a whole number from 1 to ${MAX_REPLICAS}, got ${asked}`, {
        field: 'store-replicas',
      });
    }
    return asked;
  }
  return Math.min(3, Math.max(1, new Set(advertisedUrls ?? []).size));
}

/**
 * The names of one job's JetStream state, all from its id (letters, digits,
 * _ and -, so each is a valid bucket, stream and subject token). The round
 * log's subject sits outside `tessera.>`, the workers' subjects, so no job id
 * can make the two meet.
 */
export function jetStreamNames(jobId: string) {
  return {
    /** Object Store bucket (stream OBJ_<bucket>) holding the object `checkpoint`. */
    checkpointBucket: `tessera-checkpoints-${jobId}`,
    checkpointObject: 'checkpoint',
    /** KV bucket (stream KV_<bucket>) holding the keys `status` and `rounds-start`. */
    statusBucket: `tessera-job-${jobId}`,
    roundsStream: `tessera-rounds-${jobId}`,
    roundsSubject: `tessera-rounds.${jobId}`,
  };
}
