import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { JobStatusRecord, JobStore, JobStores } from './job-store.ts';

/** What the fence asks before each write: whether this coordinator still leads (JobLease.held, read by the clock). */
export interface Fence {
  readonly held: boolean;
  readonly jobId: string;
}

/**
 * Job stores whose writes (checkpoint, status, round log) are refused once
 * the job's lease is no longer held: a coordinator whose event loop stalled
 * past its lease's deadline writes nothing more before its loss is noticed,
 * and cannot overwrite the checkpoint of the standby that took over. A job
 * the fences do not name (one added through the API) is written as it is.
 */
export function fencedStores(stores: JobStores, fences: readonly Fence[]): JobStores {
  return {
    kind: stores.kind,
    async open(jobId, outputDir) {
      const store = await stores.open(jobId, outputDir);
      const fence = fences.find((each) => each.jobId === jobId);
      return fence ? new FencedStore(store, fence) : store;
    },
    close: () => stores.close(),
  };
}

class FencedStore implements JobStore {
  constructor(
    private readonly store: JobStore,
    private readonly fence: Fence,
  ) {}

  get checkpointLocation(): string {
    return this.store.checkpointLocation;
  }

  private check(what: string): void {
    if (!this.fence.held)
      throw new TesseraError(ErrorCode.Internal, `not ${what}: this coordinator no longer holds the lease of job ${this.fence.jobId}`, { field: 'lease' });
  }

  async saveCheckpoint(bytes: Uint8Array): Promise<void> {
    this.check('saving the checkpoint');
    return this.store.saveCheckpoint(bytes);
  }

  loadCheckpoint(): Promise<Uint8Array | undefined> {
    return this.store.loadCheckpoint();
  }

  async putStatus(record: JobStatusRecord): Promise<void> {
    this.check('writing the status');
    return this.store.putStatus(record);
  }

  getStatus(): Promise<JobStatusRecord | undefined> {
    return this.store.getStatus();
  }

  async appendRounds(lines: readonly string[]): Promise<void> {
    this.check('appending to the round log');
    return this.store.appendRounds(lines);
  }

  readRounds(): Promise<string[]> {
    return this.store.readRounds();
  }

  async trimRounds(fromRound: number): Promise<string[]> {
    this.check('trimming the round log');
    return this.store.trimRounds(fromRound);
  }

  async setAsideRounds(now: Date): Promise<string | undefined> {
    this.check('setting the round log aside');
    return this.store.setAsideRounds(now);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
