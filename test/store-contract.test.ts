import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers, JsHeaders, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJobConfig } from '../coordinator/config.ts';
import { CHECKPOINT_DIGEST_FILE, CHECKPOINT_FILE, FolderStore, folderStores } from '../coordinator/store/folder-store.ts';
import type { JobStatusRecord, JobStore } from '../coordinator/store/job-store.ts';
import { jetStreamNames } from '../coordinator/store/jetstream-limits.ts';
import { connectJetStreamStores, type JetStreamStores } from '../coordinator/store/jetstream-stores.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { NatsCluster } from './helpers/nats-cluster.ts';
import { freePort } from './helpers/nats-server.ts';

/**
 * One contract, two stores: a job's checkpoint, status and round log in a
 * local folder, and in JetStream on a real 3-server nats-server cluster
 * (R3). Every case opens a second instance of the store, as a restarted (or
 * standby) coordinator would, and reads through that one.
 */

const MiB = 1024 * 1024;
/** Small limits: three servers reserve each bucket's max_bytes three times over, for every job these tests make. */
const TEST_LIMITS = { maxCheckpointBytes: 8 * MiB, maxRoundLogBytes: 4 * MiB, maxStatusBytes: 1 * MiB };

interface StoreUnderTest {
  name: 'folder' | 'nats';
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new instance of job `jobId`'s store, as a freshly started coordinator opens it. */
  open(jobId: string): Promise<JobStore>;
  /** JobStores.has: whether job `jobId` has a store to read, looked for without making one. */
  has(jobId: string): Promise<boolean>;
  /** Changes the stored checkpoint's bytes behind the store's back. */
  corruptBytes(jobId: string): Promise<void>;
  /** Blanks the digest recorded with the stored checkpoint. */
  blankDigest(jobId: string): Promise<void>;
}

let folderRoot = '';
const cluster = new NatsCluster(3);
let clusterStarted: Promise<void> | undefined;
/** One cluster for the file, started by the first test that needs it; its last test kills a server. */
const startCluster = () => (clusterStarted ??= cluster.start());
const connections: JetStreamStores[] = [];

afterAll(async () => {
  await Promise.all(connections.splice(0).map((connection) => connection.close()));
  await cluster.stop();
}, 30_000);

/** A connection of the tests' own, for looking at and tampering with what the store wrote. */
async function inspector(): Promise<NatsConnection> {
  const stores = await connectJetStreamStores({ servers: cluster.urls }, { limits: TEST_LIMITS });
  connections.push(stores);
  return stores.connection;
}

const stores: StoreUnderTest[] = [
  {
    name: 'folder',
    async setup() {
      folderRoot = mkdtempSync(join(tmpdir(), 'tessera-store-contract-'));
    },
    async teardown() {
      rmSync(folderRoot, { recursive: true, force: true });
    },
    async open(jobId) {
      return new FolderStore(join(folderRoot, jobId));
    },
    has: (jobId) => folderStores.has(jobId, join(folderRoot, jobId)),
    async corruptBytes(jobId) {
      const path = join(folderRoot, jobId, CHECKPOINT_FILE);
      const bytes = readFileSync(path);
      bytes[bytes.length >> 1] ^= 0xff;
      writeFileSync(path, bytes);
    },
    async blankDigest(jobId) {
      writeFileSync(join(folderRoot, jobId, CHECKPOINT_DIGEST_FILE), JSON.stringify({ digest: '', previous: null }));
    },
  },
  {
    name: 'nats',
    setup: startCluster,
    // The cluster serves the next describe too; the file's afterAll stops it.
    async teardown() {},
    async open(jobId) {
      const connection = await connectJetStreamStores({ servers: cluster.urls }, { limits: TEST_LIMITS });
      connections.push(connection);
      return connection.open(jobId, ''); // the output folder: the JetStream store keeps nothing there
    },
    async has(jobId) {
      const connection = await connectJetStreamStores({ servers: cluster.urls }, { limits: TEST_LIMITS });
      connections.push(connection);
      return connection.has(jobId, '');
    },
    async corruptBytes(jobId) {
      // One more chunk on the object's chunk subject: the reader takes it in, and the digest no longer matches.
      const nc = await inspector();
      const { checkpointBucket, checkpointObject } = jetStreamNames(jobId);
      const info = await (await nc.jetstream().views.os(checkpointBucket)).info(checkpointObject);
      await nc.jetstream().publish(`$O.${checkpointBucket}.C.${info!.nuid}`, new Uint8Array([1, 2, 3]));
    },
    async blankDigest(jobId) {
      // The object's metadata again, with its digest blanked, as the one message of its subject (a rollup).
      const nc = await inspector();
      const { checkpointBucket, checkpointObject } = jetStreamNames(jobId);
      const subject = `$O.${checkpointBucket}.M.${Buffer.from(checkpointObject).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;
      const meta = (await nc.jetstreamManager()).streams.getMessage(`OBJ_${checkpointBucket}`, { last_by_subj: subject });
      const info = (await meta).json<Record<string, unknown>>();
      const rollup = headers();
      rollup.set(JsHeaders.RollupHdr, JsHeaders.RollupValueSubject);
      await nc.jetstream().publish(subject, new TextEncoder().encode(JSON.stringify({ ...info, digest: '' })), { headers: rollup });
    },
  },
];

/** Deterministic bytes that do not compress (a PRNG), `size` of them. */
function pseudoRandomBytes(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

const roundLine = (round: number, extra: Record<string, unknown> = {}) => JSON.stringify({ round, version: round, applied: true, ...extra });
const qualityLine = (round: number) => JSON.stringify({ kind: 'quality', round, version: round, frechet: 12.5 });

describe.each(stores)('the $name job store', (store) => {
  beforeAll(() => store.setup(), 30_000);
  afterAll(() => store.teardown(), 30_000);

  it('keeps a checkpoint of several MB (larger than a NATS message) and gives the same bytes to a restarted coordinator', async () => {
    const bytes = pseudoRandomBytes(3 * MiB + 12_345, 7);
    const first = await store.open('round-trip');
    expect(await first.loadCheckpoint()).toBeUndefined();
    await first.saveCheckpoint(bytes);
    expect(Buffer.from((await first.loadCheckpoint())!).equals(Buffer.from(bytes))).toBe(true);
    const again = await store.open('round-trip');
    expect(Buffer.from((await again.loadCheckpoint())!).equals(Buffer.from(bytes))).toBe(true);
  });

  it('tells a job with a store from one without, and makes none by looking (model.initFrom=store:<id>)', async () => {
    expect(await store.has('never-opened')).toBe(false);
    const opened = await store.open('looked-for');
    await opened.saveCheckpoint(pseudoRandomBytes(1000, 3));
    expect(await store.has('looked-for')).toBe(true);
    // Looking twice finds nothing still: the first look made no bucket or folder.
    expect(await store.has('never-opened')).toBe(false);
  });

  it('the latest checkpoint wins', async () => {
    const job = await store.open('latest');
    await job.saveCheckpoint(pseudoRandomBytes(2 * MiB, 1));
    const newer = pseudoRandomBytes(MiB + 1, 2);
    await job.saveCheckpoint(newer);
    expect(Buffer.from((await (await store.open('latest')).loadCheckpoint())!).equals(Buffer.from(newer))).toBe(true);
  });

  it('refuses a checkpoint whose bytes no longer match its digest, with BAD_CHECKPOINT at checkpoint.digest', async () => {
    await (await store.open('corrupt')).saveCheckpoint(pseudoRandomBytes(MiB + 3, 3));
    await store.corruptBytes('corrupt');
    await expect((await store.open('corrupt')).loadCheckpoint()).rejects.toMatchObject({ code: ErrorCode.BadCheckpoint, field: 'checkpoint.digest' });
  });

  it('refuses a checkpoint whose recorded digest is missing, with BAD_CHECKPOINT at checkpoint.digest', async () => {
    await (await store.open('no-digest')).saveCheckpoint(pseudoRandomBytes(200_000, 4));
    await store.blankDigest('no-digest');
    await expect((await store.open('no-digest')).loadCheckpoint()).rejects.toMatchObject({ code: ErrorCode.BadCheckpoint, field: 'checkpoint.digest' });
  });

  it('keeps the config and status, the last one put', async () => {
    const job = await store.open('status');
    expect(await job.getStatus()).toBeUndefined();
    const config = parseJobConfig({ id: 'status', training: { batchSize: 8 } });
    const record: JobStatusRecord = { config, status: 'running', checkpoint: null, updatedAt: new Date(0).toISOString() };
    await job.putStatus(record);
    const paused: JobStatusRecord = { ...record, status: 'paused', checkpoint: { round: 10, version: 9, savedAt: new Date(1).toISOString() } };
    await job.putStatus(paused);
    expect(await (await store.open('status')).getStatus()).toEqual(paused);
  });

  it('appends the round log in order, trims the rounds past a checkpoint, and sets it aside for a fresh start', async () => {
    const job = await store.open('rounds');
    expect(await job.readRounds()).toEqual([]);
    expect(await job.setAsideRounds(new Date())).toBeUndefined();
    const lines = [roundLine(0), roundLine(1), qualityLine(1), roundLine(2), qualityLine(2), roundLine(3)];
    await job.appendRounds(lines.slice(0, 2));
    await job.appendRounds(lines.slice(2));
    expect(await job.readRounds()).toEqual(lines);
    // A restart from the checkpoint taken before round 2 plays rounds 2 and 3 again: their lines, quality ones too, go.
    const restarted = await store.open('rounds');
    expect(await restarted.trimRounds(2)).toEqual(lines.slice(0, 3));
    expect(await restarted.readRounds()).toEqual(lines.slice(0, 3));
    const redone = roundLine(2, { closedAt: 'again' });
    await restarted.appendRounds([redone]);
    expect(await (await store.open('rounds')).readRounds()).toEqual([...lines.slice(0, 3), redone]);
    // A start from round 0 (no checkpoint) begins a new log, and the old lines are kept somewhere named.
    expect(await restarted.setAsideRounds(new Date())).toEqual(expect.any(String));
    expect(await restarted.readRounds()).toEqual([]);
    await restarted.appendRounds([roundLine(0)]);
    expect(await (await store.open('rounds')).readRounds()).toEqual([roundLine(0)]);
  });
});

describe('the JetStream job store on a 3-server cluster', () => {
  beforeAll(startCluster, 30_000);

  it('makes every bucket and the stream with 3 replicas, and stores a checkpoint in chunks under max_payload', async () => {
    await (await stores[1].open('replicas')).saveCheckpoint(pseudoRandomBytes(3 * MiB, 8));
    const nc = await inspector();
    const jsm = await nc.jetstreamManager();
    const { checkpointBucket, checkpointObject, statusBucket, roundsStream } = jetStreamNames('replicas');
    const object = await (await nc.jetstream().views.os(checkpointBucket)).info(checkpointObject);
    expect(object?.size).toBe(3 * MiB);
    expect(object?.chunks).toBeGreaterThan((3 * MiB) / nc.info!.max_payload);
    for (const stream of [`OBJ_${checkpointBucket}`, `KV_${statusBucket}`, roundsStream]) {
      const info = await jsm.streams.info(stream);
      expect(info.config.num_replicas, stream).toBe(3);
      expect(info.cluster?.replicas, stream).toHaveLength(2);
    }
  });

  it('keeps reading and writing after kill -9 of one of the three servers', async () => {
    const job = await stores[1].open('failover');
    const before = pseudoRandomBytes(2 * MiB, 5);
    await job.saveCheckpoint(before);
    await job.appendRounds([roundLine(0)]);
    // The server that leads the checkpoints' stream, so that the stream must elect another leader.
    const jsm = await (await inspector()).jetstreamManager();
    const leader = (await jsm.streams.info(`OBJ_${jetStreamNames('failover').checkpointBucket}`)).cluster!.leader!;
    await cluster.kill(Number(leader.slice(1)) - 1);
    const after = pseudoRandomBytes(2 * MiB, 6);
    await job.saveCheckpoint(after);
    await job.appendRounds([roundLine(1)]);
    const status: JobStatusRecord = {
      config: parseJobConfig({ id: 'failover' }),
      status: 'running',
      checkpoint: { round: 2, version: 2, savedAt: new Date(2).toISOString() },
      updatedAt: new Date(3).toISOString(),
    };
    await job.putStatus(status);
    expect(Buffer.from((await job.loadCheckpoint())!).equals(Buffer.from(after))).toBe(true);
    const restarted = await stores[1].open('failover');
    expect(Buffer.from((await restarted.loadCheckpoint())!).equals(Buffer.from(after))).toBe(true);
    expect(await restarted.readRounds()).toEqual([roundLine(0), roundLine(1)]);
    expect(await restarted.getStatus()).toEqual(status);
  }, 45_000);

  it('says clearly when no NATS server answers', async () => {
    const nowhere = `nats://127.0.0.1:${await freePort()}`;
    await expect(connectJetStreamStores({ servers: [nowhere] })).rejects.toMatchObject({
      code: ErrorCode.Internal,
      field: 'nats',
      message: expect.stringContaining(`cannot use the NATS servers at ${nowhere}: CONNECTION_REFUSED`),
    });
  });
});
