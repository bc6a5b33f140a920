import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { StorageType, type JetStreamClient, type KV, type KvEntry, type NatsConnection } from 'nats';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { isTransient, retrying } from './retry.ts';

/** The lease's timing, all from its TTL (leaseTiming). */
export interface LeaseTiming {
  /** The bucket's max_age: a lease not renewed for this long is gone, and a standby may take it. */
  ttlMs: number;
  /**
   * How often the holder renews: TTL/8 (1 s by default), so that after the
   * last renewal before a server's loss the lease still has TTL - 2 x TTL/16
   * (6.5 s by default) to outlast the election of its stream's new leader.
   */
  renewMs: number;
  /** How often a standby tries to take it: TTL/16, so a takeover comes at most that long after the expiry. */
  pollMs: number;
  /**
   * The holder counts its lease lost this long before the bucket would drop
   * it (TTL/16), measured from when it sent its last renewal that succeeded:
   * the server stored that renewal later still, so the holder stops serving
   * before any standby can take over, by at least this much.
   */
  marginMs: number;
  /**
   * Past its deadline the holder is suspended, not deposed: it writes
   * nothing (the fence waits) but keeps renewing, and the lease is held
   * again once a renewal lands. It counts the lease lost when a renewal is
   * refused, or when none was acknowledged this long after the last one
   * (the cluster out of reach): 2 x TTL, at least 12 s, past the longest
   * leader election of nats-server 2.9 (followers wait 4 to 9 s for a dead
   * leader before they campaign).
   */
  giveUpMs: number;
}

/**
 * The default TTL: a standby takes over 7 to 8.5 s after its holder died.
 * A kill -9 of the server leading the lease's stream leaves it unwritable
 * until a follower's election timeout (4 to 9 s in nats-server 2.9) ends;
 * ten kills on the 3-server test cluster measured 4.1 to 7.2 s. An
 * election longer than the lease's deadline suspends the holder (giveUpMs)
 * rather than deposing it.
 */
export const DEFAULT_LEASE_TTL_MS = 8_000;
/** Below this a loaded machine's event-loop stalls alone would cost the lease. */
const MIN_LEASE_TTL_MS = 2_000;

/** The key of the lease in its bucket. */
const LEASE_KEY = 'leader';
/** JetStream's error code for an expected-last-sequence mismatch: someone else wrote the key (compare-and-set failed). */
const WRONG_LAST_SEQUENCE = 10071;
const encoder = new TextEncoder();
/** How soon a suspended holder tries again after a renewal failed in transit: it must beat a standby's take once the cluster answers. */
const SUSPENDED_RETRY_MS = 50;

/** The timing of a lease of `ttlMs`; a TesseraError at `lease-ttl` for a TTL that is not a whole number of ms from 2 s to 10 min. */
export function leaseTiming(ttlMs = DEFAULT_LEASE_TTL_MS): LeaseTiming {
  if (!Number.isInteger(ttlMs) || ttlMs < MIN_LEASE_TTL_MS || ttlMs > 600_000) {
    throw new TesseraError(ErrorCode.InvalidConfig, `the lease TTL must be a whole number of ms from ${MIN_LEASE_TTL_MS} to 600000, got ${ttlMs}`, {
      field: 'lease-ttl',
    });
  }
  const sixteenth = Math.floor(ttlMs / 16);
  return { ttlMs, renewMs: 2 * sixteenth, pollMs: sixteenth, marginMs: sixteenth, giveUpMs: Math.max(2 * ttlMs, 12_000) };
}

/** The lease bucket of job `jobId` (a KV bucket, stream KV_<bucket>). */
export function leaseBucketName(jobId: string): string {
  return `tessera-lease-${jobId}`;
}

export interface JobLeaseOptions {
  /** Replicas of the bucket, as the job's other buckets have (jetstream-limits.ts replicasFor). */
  replicas: number;
  ttlMs?: number;
  /** Who holds it, as standbys and `nats kv get` show it: host, PID and a random part, so no two holders are the same. */
  holder?: string;
  /** How long opening the bucket is retried through a server's loss (default 20 s). */
  retryMs?: number;
  /** Told once when the lease is lost: the holder must stop serving the job at once. */
  onLost?(error: TesseraError): void;
  /** Told when no renewal was acknowledged by the deadline: writes wait (whenHeld) until one is, or the lease is lost. */
  onSuspended?(): void;
  /** Told when a renewal landed after a suspension of `pausedMs`: the lease was never anyone else's, writes go on. */
  onResumed?(pausedMs: number): void;
}

/**
 * A job's lease: one coordinator holds it and serves the job, the others
 * wait (standbys). It is one key in a KV bucket of its own whose max_age is
 * the TTL (NATS 2.9 has no per-key TTL). Taken with create (only when no
 * live holder wrote it), renewed every TTL/8 by a put that expects the
 * stream's last sequence to be the holder's last write (compare-and-set on
 * the whole bucket: after anyone else wrote it, a standby's take or an
 * operator's put, the old holder's renewal fails), released on a clean
 * shutdown by a delete on that revision.
 *
 * Fencing: `held` is false from the deadline (the last acknowledged
 * renewal's sending + TTL - margin) until a renewal lands again; writes
 * wait on whenHeld meanwhile. A leader election of the lease's stream can
 * outlast the deadline, and even the TTL: a renewal that lands after it
 * proves nobody wrote the bucket in between (an entry expired by max_age
 * leaves the stream's last sequence as it was), so nobody else held the
 * lease. A refused renewal, or none acknowledged within giveUpMs, makes
 * the lease lost: onLost is called once and the holder must stop serving.
 */
export class JobLease {
  readonly holder: string;
  readonly timing: LeaseTiming;
  private revision = 0;
  /** Until when the lease is held unless a renewal is acknowledged first: the last acknowledged one's sending + TTL - margin. */
  private deadline = 0;
  /** Since when no renewal was acknowledged by the deadline (0 while none is overdue). */
  private suspendedAt = 0;
  private lostError: TesseraError | undefined;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  /** The renewal in flight, if any: release waits for it (it never rejects). */
  private renewal: Promise<void> | undefined;
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  private giveUpTimer: ReturnType<typeof setTimeout> | undefined;
  /** Those waiting in whenHeld for a renewal to land (or the loss). */
  private waiters: { resolve(): void; reject(error: TesseraError): void }[] = [];
  private stopped = false;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly kv: KV,
    readonly jobId: string,
    timing: LeaseTiming,
    private readonly options: JobLeaseOptions,
  ) {
    this.timing = timing;
    this.holder = options.holder ?? `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  }

  /** Opens (or makes) job `jobId`'s lease bucket on `nc`, without taking the lease. */
  static async open(nc: NatsConnection, jobId: string, options: JobLeaseOptions): Promise<JobLease> {
    const timing = leaseTiming(options.ttlMs);
    // A request may wait until the next renewal is due, no longer: a renewal that hangs must not outlive the lease.
    const js = nc.jetstream({ timeout: timing.renewMs });
    const kv = await retrying(`opening the lease bucket ${leaseBucketName(jobId)}`, options.retryMs ?? 20_000, () =>
      js.views.kv(leaseBucketName(jobId), {
        replicas: options.replicas,
        ttl: timing.ttlMs,
        history: 1,
        // Reads go to the stream's leader: a replica's direct answer may lag, and who holds the lease must not.
        allow_direct: false,
        storage: StorageType.File,
        description: `tessera job ${jobId}: the lease of the coordinator serving it`,
      }),
    );
    return new JobLease(js, kv, jobId, timing, options);
  }

  /**
   * True while this holder holds the lease. Read by the clock, not only by
   * the timers: after the event loop stalled past the deadline it is false
   * before the deadline's timer has run.
   */
  get held(): boolean {
    return this.revision > 0 && this.lostError === undefined && Date.now() < this.deadline;
  }

  /**
   * Resolves while the lease is held, or once a renewal lands after the
   * deadline passed; rejects with why once it is lost (or was never taken).
   */
  whenHeld(): Promise<void> {
    if (this.held) return Promise.resolve();
    if (this.lostError || this.stopped || this.revision === 0) return Promise.reject(this.notHolding('write under'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Why the lease was lost; undefined while held or never taken. */
  get lost(): TesseraError | undefined {
    return this.lostError;
  }

  /** Who holds the lease now (undefined when nobody does), as the bucket says. */
  async currentHolder(): Promise<string | undefined> {
    const entry = await this.kv.get(LEASE_KEY);
    return entry && entry.operation === 'PUT' ? entry.string() : undefined;
  }

  /** Takes the lease if nobody holds it; false when someone does. */
  async tryAcquire(): Promise<boolean> {
    if (this.held) return true;
    if (this.lostError || this.stopped) throw this.notHolding('take');
    // Suspended: its renewals decide, not a take (which would succeed on an expired key someone else may have written).
    if (this.revision > 0) return false;
    const sentAt = Date.now();
    try {
      const revision = await this.kv.create(LEASE_KEY, this.holder);
      this.revision = revision;
    } catch (error) {
      if (isCasFailure(error) || isTransient(error)) return false;
      throw leaseError('taking the lease', error);
    }
    this.confirmed(sentAt);
    return true;
  }

  /**
   * Waits as a standby until the lease is free, then takes it. `onWaiting`
   * is told who holds it each time that changes. Rejects when `signal` aborts.
   */
  async acquire(options: { signal?: AbortSignal; onWaiting?(holder: string | undefined): void } = {}): Promise<void> {
    let told: string | undefined | null = null;
    let freeJustNow = false;
    while (!(await this.tryAcquire())) {
      if (options.signal?.aborted) throw new TesseraError(ErrorCode.NotReady, 'stopped waiting for the lease', { field: 'lease' });
      const holder = await this.currentHolder().catch(() => undefined);
      // Free between the take and the look (the key expired or was released just then): take it at once rather than
      // a poll later, and tell nobody it is free unless that take fails too.
      if (holder === undefined && !freeJustNow) {
        freeJustNow = true;
        continue;
      }
      freeJustNow = false;
      if (holder !== told) options.onWaiting?.(holder);
      told = holder;
      await new Promise((resolve) => setTimeout(resolve, this.timing.pollMs));
    }
  }

  /** Gives the lease up (a clean shutdown), so a standby takes it at once instead of after the TTL. */
  async release(): Promise<void> {
    const wasHeld = this.held;
    this.stop();
    if (!wasHeld) return;
    // A renewal in flight may land before the delete: the delete then goes on the revision it wrote, not the one before
    // (on that one it would be refused, and the lease would stay ours for a TTL with nobody renewing it).
    await this.renewal;
    // On the revision last written: a lease someone else took meanwhile is theirs to keep.
    await this.kv.delete(LEASE_KEY, { previousSeq: this.revision }).catch(() => undefined);
    this.revision = 0;
  }

  /** Stops renewing without releasing (the lease expires after its TTL). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.giveUpTimer);
    const error = this.notHolding('write under');
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  /** A renewal (or the take) sent at `sentAt` succeeded: the lease is ours until sentAt + TTL - margin at the earliest. */
  private confirmed(sentAt: number): void {
    if (this.stopped) return;
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.giveUpTimer);
    const { ttlMs, marginMs, renewMs, giveUpMs } = this.timing;
    this.deadline = sentAt + ttlMs - marginMs;
    this.deadlineTimer = setTimeout(() => this.suspend(), this.deadline - Date.now());
    this.giveUpTimer = setTimeout(
      () => this.lose(`no renewal was acknowledged within ${giveUpMs} ms (the cluster is out of reach)`),
      sentAt + giveUpMs - Date.now(),
    );
    this.scheduleRenewal(sentAt + renewMs - Date.now());
    // An answer so late that its deadline passed already: still suspended, the next renewal is due at once.
    if (!this.held) return;
    if (this.suspendedAt > 0) {
      const pausedMs = Date.now() - this.suspendedAt;
      this.suspendedAt = 0;
      this.options.onResumed?.(pausedMs);
    }
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }

  /** The deadline passed with no renewal acknowledged: writes wait, renewals go on, faster. */
  private suspend(): void {
    if (this.stopped || this.suspendedAt > 0) return;
    // A timer may fire a millisecond before the clock reads its time.
    if (this.held) {
      this.deadlineTimer = setTimeout(() => this.suspend(), Math.max(1, this.deadline - Date.now()));
      return;
    }
    this.suspendedAt = Date.now();
    this.options.onSuspended?.();
  }

  private scheduleRenewal(delayMs: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void (this.renewal = this.renew()), Math.max(0, delayMs));
  }

  private async renew(): Promise<void> {
    if (this.revision === 0 || this.lostError || this.stopped) return;
    const sentAt = Date.now();
    try {
      const bucket = leaseBucketName(this.jobId);
      const ack = await this.js.publish(`$KV.${bucket}.${LEASE_KEY}`, encoder.encode(this.holder), {
        expect: { streamName: `KV_${bucket}`, lastSequence: this.revision },
      });
      if (this.lostError) return;
      // Kept once stopped too: release deletes on the revision last written.
      this.revision = ack.seq;
      if (this.stopped) return;
      this.confirmed(sentAt);
    } catch (error) {
      if (this.lostError || this.stopped) return;
      if (isCasFailure(error)) {
        // A renewal whose answer was lost may have landed: the key then still names this holder, at a revision we did not see.
        let entry: KvEntry | null;
        try {
          entry = await this.kv.get(LEASE_KEY);
        } catch (readError) {
          // Who wrote it is not known yet: the next renewal is refused again and reads again.
          if (this.lostError || this.stopped) return;
          if (!isTransient(readError)) {
            this.lose(`a renewal was refused and the lease could not be read: ${(readError as Error).message}`);
            return;
          }
          this.scheduleRenewal(this.retryMs());
          return;
        }
        if (this.lostError || this.stopped) return;
        if (entry?.operation === 'PUT' && entry.string() === this.holder && entry.revision > this.revision) {
          this.revision = entry.revision;
          this.scheduleRenewal(0);
          return;
        }
        const who = entry?.operation === 'PUT' ? entry.string() : 'someone who has let it go since';
        this.lose(`the lease was taken by ${who}: the renewal's compare-and-set failed`);
        return;
      }
      // Out of reach, or a leader election: try again soon (past the deadline, sooner); giveUpMs ends it.
      if (!isTransient(error)) {
        this.lose(`a renewal failed: ${(error as Error).message}`);
        return;
      }
      this.scheduleRenewal(this.retryMs());
    }
  }

  /** How soon a renewal that failed in transit is tried again: sooner once suspended. */
  private retryMs(): number {
    return this.suspendedAt > 0 ? SUSPENDED_RETRY_MS : Math.min(250, this.timing.pollMs);
  }

  private lose(reason: string): void {
    if (this.lostError || this.stopped) return;
    this.lostError = new TesseraError(ErrorCode.Internal, `lost the lease of job ${this.jobId}: ${reason}`, { field: 'lease' });
    this.stop();
    this.options.onLost?.(this.lostError);
  }

  private notHolding(what: string): TesseraError {
    return this.lostError ?? new TesseraError(ErrorCode.Internal, `cannot ${what} the lease of job ${this.jobId}: stopped`, { field: 'lease' });
  }
}

function isCasFailure(error: unknown): boolean {
  return (error as { api_error?: { err_code?: number } })?.api_error?.err_code === WRONG_LAST_SEQUENCE;
}

function leaseError(what: string, error: unknown): TesseraError {
  return new TesseraError(ErrorCode.Internal, `job lease: ${what} failed: ${(error as Error)?.message ?? String(error)}`, { field: 'lease', cause: error });
}
