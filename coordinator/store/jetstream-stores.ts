import { DiscardPolicy, nanos, RetentionPolicy, StorageType, type JetStreamManager, type NatsConnection } from 'nats';
import { connectNats, natsError, type NatsSettings } from '../../runtime/node/nats.ts';
import { TesseraError } from '../../shared/protocol/errors.ts';
import type { JobStores, StoreOpenOptions } from './job-store.ts';
import { JETSTREAM_LIMITS, jetStreamNames, replicasFor, type JetStreamLimits } from './jetstream-limits.ts';
import { JetStreamStore } from './jetstream-store.ts';
import { retrying } from './retry.ts';

export interface JetStreamStoresOptions {
  /** Replicas of every bucket and stream (1 to 5); default min(3, servers the cluster advertises): replicasFor. */
  replicas?: number;
  limits?: Partial<JetStreamLimits>;
  /** How long an operation is retried through a server's loss or a leader election (default 20 s: elections take a few). */
  retryMs?: number;
  /**
   * How long one JetStream request waits for its answer (default 2 s, the
   * client's is 5): a request to a stream whose leader died is retried sooner.
   * Each chunk of a checkpoint is one request, so this is per 128 KB.
   */
  requestTimeoutMs?: number;
}

/** Room a round-log message leaves for its headers (the message id) under max_payload. */
const HEADER_ROOM = 1024;
/** Publishes with the same message id within this window land once (a publish retried after a lost answer). */
const DUPLICATE_WINDOW_MS = 120_000;

export interface JetStreamStores extends JobStores {
  readonly kind: 'nats';
  /** The replicas its buckets and stream are made with. */
  readonly replicas: number;
  /** The connection the stores share. */
  readonly connection: NatsConnection;
}

/**
 * Connects to the NATS cluster for `--store nats`. Unreachable servers or
 * refused credentials are a TesseraError (field `nats`) at once; a cluster without JetStream one after
 * `retryMs` (field `store`), saying to enable it.
 */
export async function connectJetStreamStores(settings: NatsSettings, options: JetStreamStoresOptions = {}): Promise<JetStreamStores> {
  const limits = { ...JETSTREAM_LIMITS, ...options.limits };
  const retryMs = options.retryMs ?? 20_000;
  const timeout = options.requestTimeoutMs ?? 2_000;
  let nc: NatsConnection;
  try {
    nc = await connectNats({ ...settings, name: settings.name ?? 'tessera-coordinator-store' });
  } catch (error) {
    // connectNats's TesseraError carries the client's error as its cause: its code (refused, unauthorized) says what happened.
    const refusal = error instanceof TesseraError ? error : natsError(error);
    const reason = (refusal.cause as Error | undefined)?.message ?? refusal.message;
    throw new TesseraError(refusal.code, `--store nats: cannot use the NATS servers at ${settings.servers.join(', ')}: ${reason}`, {
      field: 'nats',
      cause: error,
    });
  }
  try {
    const replicas = replicasFor(options.replicas, nc.info?.connect_urls);
    const jsm = await retrying('reaching JetStream (is it enabled: nats-server -js, or a jetstream block?)', retryMs, async () => {
      const manager = await nc.jetstreamManager({ timeout });
      await manager.getAccountInfo();
      return manager;
    });
    const js = nc.jetstream({ timeout });
    const maxLineBytes = Math.min(limits.maxRoundLineBytes, nc.info?.max_payload ?? limits.maxRoundLineBytes) - HEADER_ROOM;
    return {
      kind: 'nats',
      replicas,
      connection: nc,
      async open(jobId: string, _outputDir: string, options: StoreOpenOptions = {}) {
        const names = jetStreamNames(jobId);
        const description = `tessera job ${jobId}`;
        const checkpoints = await retrying(`opening the object store ${names.checkpointBucket}`, retryMs, async () => {
          // Twice the largest checkpoint: the old object stays until the new one is whole.
          const store = await js.views.os(names.checkpointBucket, {
            replicas,
            max_bytes: 2 * limits.maxCheckpointBytes + 1024 * 1024,
            storage: StorageType.File,
            description: `${description}: its checkpoint`,
          });
          // views.os() passes over a failed lookup other than "not found": a bucket that is not there now is made again.
          await store.status().catch(() => {
            throw new Error(`the object store ${names.checkpointBucket} was not made: its creation timed out`);
          });
          return store;
        });
        const status = await retrying(`opening the KV bucket ${names.statusBucket}`, retryMs, () =>
          js.views.kv(names.statusBucket, {
            replicas,
            // Reads go to the stream's leader, as the lease's do: a replica's direct answer may lag a put just made (the
            // round log's start after setAsideRounds read the old start once, on a loaded machine), for buckets made
            // before this too (the client then asks the leader whatever the stream allows).
            allow_direct: false,
            history: limits.statusHistory,
            max_bytes: limits.maxStatusBytes,
            maxValueSize: limits.maxStatusValueBytes,
            storage: StorageType.File,
            description: `${description}: its config and status`,
          }),
        );
        await retrying(`opening the stream ${names.roundsStream}`, retryMs, () =>
          ensureRoundsStream(jsm, names, replicas, limits, maxLineBytes + HEADER_ROOM, `${description}: its round log`),
        );
        return new JetStreamStore({ js, jsm, checkpoints, status, names, limits, maxLineBytes, retryMs, beforeWrite: options.beforeWrite });
      },
      has(jobId: string) {
        const { checkpointBucket } = jetStreamNames(jobId);
        // The object store's stream (nats.js names it OBJ_<bucket>): every job's store has one from its first open.
        return retrying(`looking for the object store ${checkpointBucket}`, retryMs, async () => {
          try {
            await jsm.streams.info(`OBJ_${checkpointBucket}`);
            return true;
          } catch (error) {
            if ((error as Error).message === 'stream not found') return false;
            throw error;
          }
        });
      },
      async close() {
        await nc.drain().catch(() => nc.close());
      },
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
}

/** Makes the round log's stream when it is not there; one that is (made by an earlier start, or an operator) is used as it is. */
async function ensureRoundsStream(
  jsm: JetStreamManager,
  names: ReturnType<typeof jetStreamNames>,
  replicas: number,
  limits: JetStreamLimits,
  maxMessageBytes: number,
  description: string,
): Promise<void> {
  try {
    await jsm.streams.info(names.roundsStream);
    return;
  } catch (error) {
    if ((error as Error).message !== 'stream not found') throw error;
  }
  await jsm.streams.add({
    name: names.roundsStream,
    description,
    subjects: [names.roundsSubject],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_bytes: limits.maxRoundLogBytes,
    max_msg_size: maxMessageBytes,
    // A full log refuses new lines (reported as an output error) rather than drop the job's first rounds.
    discard: DiscardPolicy.New,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  });
}
