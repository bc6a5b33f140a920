import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LEASE_TTL_MS, JobLease, leaseBucketName, type JobLeaseOptions } from '../coordinator/store/lease.ts';
import type { TesseraError } from '../shared/protocol/errors.ts';
import { NatsCluster } from './helpers/nats-cluster.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';

/**
 * The job lease on a real 3-server nats-server cluster (R3 bucket): one
 * holder at a time, a standby takes over after the holder stops renewing,
 * a holder whose lease was taken or whose cluster is gone says so, a holder
 * cut off past its TTL is suspended and holds it again when nobody took it,
 * and the loss of one server (the one leading the lease's stream, the
 * holder connected to it) does not cost a healthy lease.
 */

const cluster = new NatsCluster(3);
const connections: NatsConnection[] = [];
/** A short TTL where the case is about the lease's logic, not about outlasting an election. */
const SHORT_TTL_MS = 3_000;

beforeAll(async () => {
  await cluster.start();
  // The meta leader answers before it knows all three peers: an R3 bucket is refused ("no suitable peers") until it does.
  const nc = await connection();
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await JobLease.open(nc, 'lease-warmup', { replicas: 3, retryMs: 0 });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}, 45_000);
afterAll(async () => {
  await Promise.all(connections.splice(0).map((nc) => nc.close().catch(() => undefined)));
  await cluster.stop();
}, 30_000);

/** A coordinator's own connection; `first` puts one server's URL first (else they are tried in order too). */
async function connection(first?: string): Promise<NatsConnection> {
  const servers = first ? [first, ...cluster.urls.filter((url) => url !== first)] : cluster.urls;
  const nc = await connect({ servers, noRandomize: true, reconnectTimeWait: 250, maxReconnectAttempts: -1 });
  connections.push(nc);
  return nc;
}

/** A connection through `proxy` only (no other server to reconnect to): holding the proxy cuts it off. */
async function connectionVia(proxy: TcpProxy): Promise<NatsConnection> {
  const nc = await connect({ servers: `nats://127.0.0.1:${proxy.port}`, reconnectTimeWait: 250, maxReconnectAttempts: -1 });
  connections.push(nc);
  return nc;
}

/** A lease on its own connection (`via` one given), recording its loss, suspensions and resumptions. */
async function holder(jobId: string, options: Partial<JobLeaseOptions> = {}, first?: string, via?: NatsConnection) {
  const losses: TesseraError[] = [];
  const events: string[] = [];
  const lease = await JobLease.open(via ?? (await connection(first)), jobId, {
    replicas: 3,
    ttlMs: SHORT_TTL_MS,
    onLost: (error) => losses.push(error),
    onSuspended: () => events.push('suspended'),
    onResumed: () => events.push('resumed'),
    ...options,
  });
  return { lease, losses, events };
}

/** Polls `read` every 50 ms until `done` holds of it, at most `ms`; returns the last value read. */
async function pollUntil<T>(read: () => Promise<T> | T, done: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }
  return value;
}

describe('job lease on a 3-server cluster', () => {
  /** Made while all three servers run (an R3 bucket cannot be made on two); taken by the last case, after one is gone. */
  let gone: Awaited<ReturnType<typeof holder>>;
  beforeAll(async () => {
    gone = await holder('lease-gone');
  });

  it('is held by one of two at a time, and the other sees who', async () => {
    const a = await holder('lease-two');
    const b = await holder('lease-two');
    // Both wait for it (a bucket just made may not answer at once); one gets it.
    const waits = [a.lease.acquire(), b.lease.acquire()];
    const first = await Promise.race(waits.map((wait, i) => wait.then(() => i)));
    const [winner, loser] = first === 0 ? [a, b] : [b, a];
    await new Promise((resolve) => setTimeout(resolve, SHORT_TTL_MS / 2));
    expect(winner.lease.held).toBe(true);
    expect(loser.lease.held).toBe(false);
    expect(await loser.lease.currentHolder()).toBe(winner.lease.holder);
    // Released cleanly, the other takes it at once, not after the TTL.
    const releasedAt = Date.now();
    await winner.lease.release();
    await waits[1 - first];
    expect(Date.now() - releasedAt).toBeLessThan(SHORT_TTL_MS / 2);
    expect(loser.lease.held).toBe(true);
    await loser.lease.release();
    expect([...a.losses, ...b.losses]).toEqual([]);
  });

  it('goes to the standby within TTL + a poll once the holder stops renewing', async () => {
    const a = await holder('lease-expiry');
    const b = await holder('lease-expiry');
    await a.lease.acquire();
    const waiting: (string | undefined)[] = [];
    const standby = b.lease.acquire({ onWaiting: (who) => waiting.push(who) });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(b.lease.held).toBe(false);
    // The holder freezes (a crash: no release).
    a.lease.stop();
    const stoppedAt = Date.now();
    await standby;
    const tookMs = Date.now() - stoppedAt;
    expect(b.lease.held).toBe(true);
    expect(waiting).toEqual([a.lease.holder]);
    // The lease's own guarantee: it expires at most TTL after the last renewal, and the standby looks every poll.
    expect(tookMs).toBeLessThan(SHORT_TTL_MS + b.lease.timing.pollMs + 1_000);
    expect(await a.lease.currentHolder()).toBe(b.lease.holder);
    await b.lease.release();
  });

  it('reports a lease taken from under its holder: the renewal compare-and-set fails', async () => {
    const a = await holder('lease-taken');
    await a.lease.acquire();
    // Someone writes the key over the holder (an operator's `nats kv put`): the next renewal must not succeed.
    const kv = await (await connection()).jetstream().views.kv(leaseBucketName('lease-taken'));
    await kv.put('leader', 'an intruder');
    const before = Date.now();
    while (a.losses.length === 0 && Date.now() - before < SHORT_TTL_MS) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(a.lease.held).toBe(false);
    expect(a.losses).toHaveLength(1);
    expect(a.losses[0]).toMatchObject({ code: 'INTERNAL', field: 'lease' });
    expect(a.losses[0]!.message).toMatch(/taken by an intruder/);
    // A lost lease is not taken again by the same holder: its process restarts as a standby.
    await expect(a.lease.tryAcquire()).rejects.toMatchObject({ field: 'lease' });
  });

  it('outlasts a stall past its TTL: suspended (writes wait), then held again by a renewal, as nobody wrote the bucket meanwhile', async () => {
    const proxy = await TcpProxy.start(Number(new URL(cluster.urls[0]!).port));
    try {
      const a = await holder('lease-stall', {}, undefined, await connectionVia(proxy));
      await a.lease.acquire();
      const observer = await JobLease.open(await connection(), 'lease-stall', { replicas: 3 });
      proxy.hold();
      // Past the TTL the bucket drops the key: the stall outlasted the lease itself, not only its deadline.
      expect(
        await pollUntil(
          () => observer.currentHolder(),
          (who) => who === undefined,
          SHORT_TTL_MS + 3_000,
        ),
      ).toBeUndefined();
      expect(a.lease.held).toBe(false);
      expect(a.events).toEqual(['suspended']);
      let wrote = false;
      const write = a.lease.whenHeld().then(() => (wrote = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(wrote).toBe(false);
      proxy.release();
      await write;
      expect(a.lease.held).toBe(true);
      expect(a.events).toEqual(['suspended', 'resumed']);
      expect(a.losses).toEqual([]);
      expect(await observer.currentHolder()).toBe(a.lease.holder);
      await a.lease.release();
    } finally {
      proxy.release();
      await proxy.close();
    }
  });

  it('is lost, not resumed, when a standby took the lease while its holder was cut off', async () => {
    const proxy = await TcpProxy.start(Number(new URL(cluster.urls[0]!).port));
    try {
      const a = await holder('lease-stall-taken', {}, undefined, await connectionVia(proxy));
      await a.lease.acquire();
      const b = await holder('lease-stall-taken');
      proxy.hold();
      expect(
        await pollUntil(
          () => a.lease.held,
          (held) => !held,
          SHORT_TTL_MS,
        ),
      ).toBe(false);
      const stranded = a.lease.whenHeld().catch((error: TesseraError) => error);
      await b.lease.acquire();
      proxy.release();
      const losses = await pollUntil(
        () => a.losses,
        (found) => found.length > 0,
        5_000,
      );
      expect(losses).toHaveLength(1);
      expect(losses[0]!.message).toMatch(new RegExp(`taken by ${b.lease.holder}`));
      // The write that waited is refused, and the holder never held it again.
      expect(await stranded).toBe(losses[0]);
      expect(a.events).toEqual(['suspended']);
      expect(a.lease.held).toBe(false);
      expect(b.lease.held).toBe(true);
      await b.lease.release();
    } finally {
      proxy.release();
      await proxy.close();
    }
  });

  it('keeps a healthy lease (default TTL) through a kill -9 of the server leading its stream, the holder connected to it', async () => {
    const probe = await connection();
    // The bucket first, to find its stream's leader; then the holder connects to that very server.
    const a0 = await JobLease.open(probe, 'lease-kill', { replicas: 3 });
    const info = await (await probe.jetstreamManager()).streams.info(`KV_${leaseBucketName('lease-kill')}`);
    expect(info.config.num_replicas).toBe(3);
    const leader = Number(info.cluster!.leader!.slice(1)) - 1;
    const a = await holder('lease-kill', { ttlMs: undefined }, cluster.urls[leader]);
    expect(a.lease.timing.ttlMs).toBe(DEFAULT_LEASE_TTL_MS);
    await a.lease.acquire();
    // Just before a renewal is due: the most the election can eat into the lease.
    await new Promise((resolve) => setTimeout(resolve, a.lease.timing.renewMs - 200));
    await cluster.kill(leader);
    await new Promise((resolve) => setTimeout(resolve, a.lease.timing.ttlMs + 1_000));
    // An election longer than the deadline (a follower may wait 9 s) leaves the holder suspended until its renewal lands.
    await a.lease.whenHeld();
    expect(a.losses).toEqual([]);
    expect(a.lease.held).toBe(true);
    expect(await a0.tryAcquire()).toBe(false);
    expect(await a0.currentHolder()).toBe(a.lease.holder);
  });

  it('stops writing before its lease could expire when the cluster is out of reach, and gives it up after giveUpMs', async () => {
    const a = gone;
    // Two servers of three left: the stream still has its quorum.
    await a.lease.acquire();
    const killedAt = Date.now();
    await Promise.all(cluster.urls.map((_, i) => cluster.kill(i)));
    const { ttlMs, marginMs, giveUpMs } = a.lease.timing;
    const until = (ms: number) => new Promise((resolve) => setTimeout(resolve, killedAt + ms - Date.now()));
    // Not held (no write) from TTL - margin after the last acknowledged renewal, which was sent before the kill: the bucket
    // could drop the key no sooner than TTL after it.
    await until(ttlMs - marginMs + 50);
    expect(a.lease.held).toBe(false);
    expect(a.events).toEqual(['suspended']);
    expect(a.losses).toEqual([]);
    // Lost once no renewal was acknowledged for giveUpMs (its timer is due before this one).
    await until(giveUpMs + 50);
    expect(a.losses).toHaveLength(1);
    expect(a.losses[0]!.message).toMatch(/no renewal was acknowledged within 12000 ms/);
    await expect(a.lease.whenHeld()).rejects.toBe(a.losses[0]);
  }, 30_000);
});
