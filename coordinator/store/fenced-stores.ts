import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { JobStores } from './job-store.ts';

/** What the fence waits on before each write: that this coordinator leads (JobLease.whenHeld). */
export interface Fence {
  readonly jobId: string;
  /** Resolves while the lease is held or once it is confirmed again; rejects once it is lost. */
  whenHeld(): Promise<void>;
}

/**
 * Job stores whose writes (checkpoint, status, round log) wait while the
 * job's lease is unconfirmed (past its deadline, e.g. while its stream
 * elects a leader) and are refused once it is lost: a coordinator whose
 * lease may have expired writes nothing until a renewal proves nobody else
 * took it, and cannot overwrite the checkpoint of a standby that did. The
 * store awaits the fence before each write and, where it retries one through
 * a server's loss, before every attempt (StoreOpenOptions.beforeWrite).
 * Writes that wait keep their order (the job's outputs go through one
 * queue). A job the fences do not name (one added through the API) is
 * written as it is.
 */
export function fencedStores(stores: JobStores, fences: readonly Fence[]): JobStores {
  return {
    kind: stores.kind,
    open(jobId, outputDir) {
      const fence = fences.find((each) => each.jobId === jobId);
      return stores.open(jobId, outputDir, fence ? { beforeWrite: (what) => fenceOf(fence, what) } : {});
    },
    has: (jobId, outputDir) => stores.has(jobId, outputDir),
    close: () => stores.close(),
  };
}

/** Waits for `fence`; a lost lease as a TesseraError at `lease` saying what was not done. */
async function fenceOf(fence: Fence, what: string): Promise<void> {
  try {
    await fence.whenHeld();
  } catch (error) {
    throw new TesseraError(ErrorCode.Internal, `not ${what}: this coordinator no longer holds the lease of job ${fence.jobId}`, {
      field: 'lease',
      cause: error,
    });
  }
}
