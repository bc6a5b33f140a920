import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, nanos, type JetStreamClient, type JetStreamManager, type KV, type ObjectResult, type ObjectStore } from 'nats';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { checkDigest } from './digest.ts';
import { roundOfLine, type JobStatusRecord, type JobStore } from './job-store.ts';
import type { JetStreamLimits, jetStreamNames } from './jetstream-limits.ts';
import { retrying, storeError } from './retry.ts';

/** What one job's JetStream store works with; made by connectJetStreamStores (jetstream-stores.ts). */
export interface JetStreamStoreParts {
  js: JetStreamClient;
  jsm: JetStreamManager;
  checkpoints: ObjectStore;
  status: KV;
  names: ReturnType<typeof jetStreamNames>;
  limits: JetStreamLimits;
  /** The largest round-log line: the limit, or the server's max_payload less room for headers. */
  maxLineBytes: number;
  /** How long an operation is retried through a server's loss or a leader election. */
  retryMs: number;
  /** Awaited before every attempt of a write (StoreOpenOptions.beforeWrite: the lease's fence). */
  beforeWrite?(what: string): Promise<void>;
}

/** The KV keys beside the object and the stream. */
const STATUS_KEY = 'status';
/** The stream sequence the round log starts at, once setAsideRounds has put earlier lines aside. */
const ROUNDS_START_KEY = 'rounds-start';
/** Lines fetched per request when the round log is read back. */
const READ_BATCH = 512;
/** How long the chunks of a checkpoint may stop arriving before its read fails (an object whose chunks are gone never ends). */
const CHUNK_SILENCE_MS = 30_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A job's state in JetStream: the checkpoint as one object of an Object
 * Store bucket (chunked by the object store, its SHA-256 digest checked on
 * read by the client and again here), the status in a KV bucket, the round
 * log as messages on one subject of a stream, read back in stream order.
 * Every operation is retried through transient errors (retry.ts), so a
 * cluster that loses one of three servers keeps serving it.
 */
export class JetStreamStore implements JobStore {
  readonly kind = 'nats';
  constructor(private readonly parts: JetStreamStoreParts) {}

  get checkpointLocation(): string {
    return `nats object store ${this.parts.names.checkpointBucket}/${this.parts.names.checkpointObject}`;
  }

  /** The object store writes the chunks, then the metadata with the digest, then purges the old chunks: a crash before leaves the old one. */
  async saveCheckpoint(bytes: Uint8Array): Promise<void> {
    const { checkpoints, names, limits } = this.parts;
    if (bytes.byteLength > limits.maxCheckpointBytes) {
      throw new TesseraError(
        ErrorCode.TooLarge,
        `a checkpoint of ${bytes.byteLength} bytes is over the store's limit of ${limits.maxCheckpointBytes} (maxCheckpointBytes, coordinator/store/jetstream-limits.ts)`,
        { field: 'checkpoint' },
      );
    }
    await this.writing('saving the checkpoint', () => checkpoints.putBlob({ name: names.checkpointObject }, bytes));
  }

  async loadCheckpoint(): Promise<Uint8Array | undefined> {
    const { checkpoints, names, retryMs } = this.parts;
    return retrying('reading the checkpoint', retryMs, async () => {
      let result: ObjectResult | null;
      try {
        result = await checkpoints.get(names.checkpointObject);
      } catch (error) {
        throw this.digestRefusal(error) ?? error;
      }
      if (result === null) return undefined;
      const bytes = await this.readObject(result);
      checkDigest(bytes, [result.info.digest], this.checkpointLocation);
      return bytes;
    });
  }

  async putStatus(record: JobStatusRecord): Promise<void> {
    const value = encoder.encode(JSON.stringify(record));
    if (value.byteLength > this.parts.limits.maxStatusValueBytes) {
      throw new TesseraError(ErrorCode.TooLarge, `a status of ${value.byteLength} bytes is over the limit of ${this.parts.limits.maxStatusValueBytes}`, {
        field: 'status',
      });
    }
    await this.writing('saving the status', () => this.parts.status.put(STATUS_KEY, value));
  }

  async getStatus(): Promise<JobStatusRecord | undefined> {
    const entry = await retrying('reading the status', this.parts.retryMs, () => this.parts.status.get(STATUS_KEY));
    if (!entry || entry.operation !== 'PUT') return undefined;
    try {
      return entry.json<JobStatusRecord>();
    } catch (error) {
      throw storeError(`reading the status (${this.parts.names.statusBucket}/${STATUS_KEY} is not JSON)`, error);
    }
  }

  /** One message a line, each published and acknowledged before the next; its message id, the same for every attempt, makes a retried publish land once. */
  async appendRounds(lines: readonly string[]): Promise<void> {
    const { js, names, maxLineBytes } = this.parts;
    for (const line of lines) {
      const data = encoder.encode(line);
      if (data.byteLength > maxLineBytes) {
        throw new TesseraError(ErrorCode.TooLarge, `a round-log line of ${data.byteLength} bytes is over the limit of ${maxLineBytes} (one message)`, {
          field: 'roundLog',
        });
      }
      const msgID = randomUUID();
      await this.writing('appending to the round log', () => js.publish(names.roundsSubject, data, { msgID, expect: { streamName: names.roundsStream } }));
    }
  }

  async readRounds(): Promise<string[]> {
    return (await this.readFromStart()).map(({ line }) => line);
  }

  /** Deletes the messages of the rounds to be played again (a stream is append-only, but single messages can go). */
  async trimRounds(fromRound: number): Promise<string[]> {
    const { jsm, names } = this.parts;
    const entries = await this.readFromStart();
    const kept: string[] = [];
    for (const { seq, line } of entries) {
      if ((roundOfLine(line) ?? Infinity) < fromRound) {
        kept.push(line);
        continue;
      }
      await this.writing('trimming the round log', async () => {
        try {
          await jsm.streams.deleteMessage(names.roundsStream, seq, false);
        } catch (error) {
          // Deleted already (by an attempt whose answer was lost).
          if (!/no message found|not found/i.test((error as Error).message)) throw error;
        }
      });
    }
    return kept;
  }

  /** The earlier lines stay in the stream (until its limits drop them); the log starts after them, as the KV records. */
  async setAsideRounds(now: Date): Promise<string | undefined> {
    const { jsm, status, names, retryMs } = this.parts;
    const start = await this.roundsStart();
    const info = await retrying('reading the round log', retryMs, () => jsm.streams.info(names.roundsStream));
    const last = info.state.last_seq;
    if (info.state.messages === 0 || last < start) return undefined;
    const record = JSON.stringify({ seq: last + 1, setAsideAt: now.toISOString() });
    await this.writing('setting the round log aside', () => status.put(ROUNDS_START_KEY, encoder.encode(record)));
    return `stream ${names.roundsStream}, sequences ${start} to ${last}`;
  }

  /** The connection is the JobStores', shared by every job: nothing of this job's stays open. */
  async close(): Promise<void> {}

  /** A write, retried through transient errors, each attempt after beforeWrite (whose refusal is not retried, and whose wait is not counted). */
  private writing<T>(what: string, operation: () => Promise<T>): Promise<T> {
    const { beforeWrite, retryMs } = this.parts;
    return retrying(what, retryMs, operation, beforeWrite && (() => beforeWrite(what)));
  }

  /** The round log's first stream sequence: 1, or where setAsideRounds put it. */
  private async roundsStart(): Promise<number> {
    const entry = await retrying('reading the round log start', this.parts.retryMs, () => this.parts.status.get(ROUNDS_START_KEY));
    if (!entry || entry.operation !== 'PUT') return 1;
    const seq = (entry.json<{ seq?: unknown }>() ?? {}).seq;
    return Number.isInteger(seq) && (seq as number) > 0 ? (seq as number) : 1;
  }

  /**
   * The round log's lines with their stream sequences, through an ephemeral
   * consumer that counts what there is to read when it is made, so the read
   * ends there (lines appended meanwhile are not waited for).
   */
  private async readFromStart(): Promise<{ seq: number; line: string }[]> {
    const { js, jsm, names, retryMs } = this.parts;
    const start = await this.roundsStart();
    return retrying('reading the round log', retryMs, async () => {
      const consumer = await jsm.consumers.add(names.roundsStream, {
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: start,
        filter_subject: names.roundsSubject,
        inactive_threshold: nanos(60_000),
        mem_storage: true,
        num_replicas: 1,
      });
      const entries: { seq: number; line: string }[] = [];
      try {
        const reader = await js.consumers.get(names.roundsStream, consumer.name);
        while (entries.length < consumer.num_pending) {
          const batch = await reader.fetch({ max_messages: Math.min(READ_BATCH, consumer.num_pending - entries.length), expires: 5_000 });
          const before = entries.length;
          for await (const message of batch) entries.push({ seq: message.seq, line: decoder.decode(message.data) });
          if (entries.length === before) throw new Error(`reading the round log timed out after ${before} of ${consumer.num_pending} lines`);
        }
      } finally {
        await jsm.consumers.delete(names.roundsStream, consumer.name).catch(() => undefined);
      }
      return entries;
    });
  }

  /** The object's bytes; a read cut short or refused by the client's digest check is a BadCheckpoint. */
  private async readObject(result: ObjectResult): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = result.data.getReader();
    try {
      for (;;) {
        let timer: NodeJS.Timeout | undefined;
        const silence = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no chunk of the checkpoint arrived for ${CHUNK_SILENCE_MS} ms after ${size} bytes`)), CHUNK_SILENCE_MS);
        });
        const { done, value } = await Promise.race([reader.read(), silence]).finally(() => clearTimeout(timer));
        if (done) break;
        chunks.push(value);
        size += value.byteLength;
      }
      const failure = await result.error;
      if (failure) throw failure;
    } catch (error) {
      void reader.cancel().catch(() => undefined);
      throw this.digestRefusal(error) ?? error;
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return bytes;
  }

  /** The nats client's refusals of a digest (missing, unreadable, not matching) as BadCheckpoint; undefined for other errors. */
  private digestRefusal(error: unknown): TesseraError | undefined {
    const message = (error as Error)?.message ?? '';
    if (!/digest/i.test(message)) return undefined;
    return new TesseraError(ErrorCode.BadCheckpoint, `the checkpoint in ${this.checkpointLocation} was refused: ${message}`, {
      field: 'checkpoint.digest',
      cause: error,
    });
  }
}
