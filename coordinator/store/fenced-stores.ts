import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { JobStatusRecord, JobStore, JobStores } from './job-store.ts';

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
 * store retries each write through a server's loss; every attempt waits on
 * the fence (`beforeWrite`), not only the first. Writes that wait keep their
 * order (the job's outputs go through one queue). A job the fences do not
 * name (one added through the API) is written as it is.
 */
export function fencedStores(stores: JobStores, fences: readonly Fence[]): JobStores {
  return {
    kind: stores.kind,
    async open(jobId, outputDir) {
      const fence = fences.find((each) => each.jobId === jobId);
      if (!fence) return stores.open(jobId, outputDir);
      const store = await stores.open(jobId, outputDir, { beforeWrite: () => fenceOf(fence, 'writing') });
      return new FencedStore(store, fence);
    },
    close: () => stores.close(),
  };
}

class FencedStore implements JobStore {
  constructor(
    private readonly store: JobStore,
    private readonly fence: Fence,
  ) {}

  get kind(): JobStore['kind'] {
    return this.store.kind;
  }

  get checkpointLocation(): string {
    return this.store.checkpointLocation;
  }

  private check(what: string): Promise<void> {
    return fenceOf(this.fence, what);
  }

  async saveCheckpoint(bytes: Uint8Array): Promise<void> {
    await this.check('saving the checkpoint');
    return this.store.saveCheckpoint(bytes);
  }

  loadCheckpoint(): Promise<Uint8Array | undefined> {
    return this.store.loadCheckpoint();
  }

  async putStatus(record: JobStatusRecord): Promise<void> {
    await this.check('writing the status');
    return this.store.putStatus(record);
  }

  getStatus(): Promise<JobStatusRecord | undefined> {
    return this.store.getStatus();
  }

  async appendRounds(lines: readonly string[]): Promise<void> {
    await this.check('appending to the round log');
    return this.store.appendRounds(lines);
  }

  readRounds(): Promise<string[]> {
    return this.store.readRounds();
  }

  async trimRounds(fromRound: number): Promise<string[]> {
    await this.check('trimming the round log');
    return this.store.trimRounds(fromRound);
  }

  async setAsideRounds(now: Date): Promise<string | undefined> {
    await this.check('setting the round log aside');
    return this.store.setAsideRounds(now);
  }

  close(): Promise<void> {
    return this.store.close();
  }
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
