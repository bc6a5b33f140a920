import type { NatsConnection } from 'nats';
import { connectNats, type NatsSettings } from '../runtime/node/nats.ts';
import type { TesseraError } from '../shared/protocol/errors.ts';
import { serveStandby } from './standby.ts';
import { JobLease } from './store/lease.ts';

export interface LeadOptions {
  nats: NatsSettings;
  jobId: string;
  /** The replicas of the job's other buckets (the lease's bucket gets the same). */
  replicas: number;
  ttlMs?: number;
  /** Where the standby answers while it waits: the port and address the coordinator will serve on. */
  port: number;
  host: string;
  print(line: string): void;
  /** The lease was lost while leading: stop serving the job at once. */
  onLost(error: TesseraError): void;
}

/** A job's lease, held; released (and its connection closed) on a clean shutdown. */
export interface Leadership {
  lease: JobLease;
  release(): Promise<void>;
}

/**
 * Takes the job's lease before the coordinator opens the job (`--store
 * nats`). While another coordinator holds it, this one is a standby: it
 * serves /health and a 503 /readyz on its port (standby.ts) and polls the
 * lease; once it has it, it stops answering there and returns, and the
 * coordinator opens the job from the latest checkpoint in the store. The
 * lease has its own NATS connection: renewals do not queue behind a
 * checkpoint's upload on the store's.
 */
export async function lead(options: LeadOptions): Promise<Leadership> {
  const nc: NatsConnection = await connectNats({ ...options.nats, name: `tessera-coordinator-lease-${options.jobId}` });
  const lease: JobLease = await JobLease.open(nc, options.jobId, {
    replicas: options.replicas,
    ttlMs: options.ttlMs,
    onLost: options.onLost,
    onSuspended: () => {
      const { ttlMs, marginMs, giveUpMs } = lease.timing;
      options.print(
        `the lease of job ${options.jobId} is unconfirmed ${ttlMs - marginMs} ms after the last renewal acknowledged (its stream electing a leader, or the cluster out of reach): writes wait, renewals go on for up to ${giveUpMs} ms`,
      );
    },
    onResumed: (pausedMs) =>
      options.print(`the lease of job ${options.jobId} is confirmed again after ${Math.round(pausedMs)} ms unconfirmed (nobody else took it): writes go on`),
  });
  const release = async () => {
    await lease.release().catch(() => undefined);
    await nc.close().catch(() => undefined);
  };
  if (!(await lease.tryAcquire())) {
    let holder: string | undefined;
    const standby = await serveStandby(options.port, options.host, { jobId: options.jobId, holder: () => holder });
    options.print(`standby for job ${options.jobId} on port ${standby.port} (/readyz answers 503 until it leads; lease TTL ${lease.timing.ttlMs} ms)`);
    await lease.acquire({
      onWaiting: (who) => {
        holder = who;
        options.print(`standby: the lease of job ${options.jobId} is held by ${who ?? 'nobody (expired)'}`);
      },
    });
    await standby.close();
  }
  options.print(`leading job ${options.jobId}: holding its lease as ${lease.holder}`);
  return { lease, release };
}
