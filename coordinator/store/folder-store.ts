import { appendFile, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { writeFileAtomic } from '../outputs.ts';
import { ROUND_LOG } from '../round-log.ts';
import { checkDigest, sha256Digest } from './digest.ts';
import { roundOfLine, type JobStatusRecord, type JobStore, type JobStores } from './job-store.ts';

export const CHECKPOINT_FILE = 'checkpoint.msgpack';
/** The checkpoint's digest, beside it: `{ digest, previous }`, both `SHA-256=…`. */
export const CHECKPOINT_DIGEST_FILE = `${CHECKPOINT_FILE}.sha256`;
export const STATUS_FILE = 'status.json';

/** The contents of ENOENT-tolerant reads: undefined when the file is not there. */
async function readIfThere(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Writes `bytes` to a temporary file beside `path`, flushed to disk; returns its name, for a rename over `path`. */
async function writeTemporary(path: string, bytes: Uint8Array | string): Promise<string> {
  const temporary = `${path}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temporary;
}

/**
 * A job's state in its output folder, as the coordinator has always kept
 * it: `checkpoint.msgpack`, `rounds.jsonl`, and beside them the checkpoint's
 * digest (`checkpoint.msgpack.sha256`) and `status.json`.
 */
export class FolderStore implements JobStore {
  readonly kind = 'folder';
  /** `beforeWrite`: awaited before each write (StoreOpenOptions.beforeWrite, the lease's fence). */
  constructor(
    readonly dir: string,
    private readonly beforeWrite?: (what: string) => Promise<void>,
  ) {}

  get checkpointLocation(): string {
    return join(this.dir, CHECKPOINT_FILE);
  }

  /**
   * The digest file is written before the checkpoint is renamed into place and
   * names both the new digest and the one it replaces: a crash between the two
   * renames leaves the previous checkpoint, whose digest is still recorded.
   */
  async saveCheckpoint(bytes: Uint8Array): Promise<void> {
    await this.beforeWrite?.('saving the checkpoint');
    await mkdir(this.dir, { recursive: true });
    const checkpoint = await writeTemporary(this.checkpointLocation, bytes);
    const digestPath = join(this.dir, CHECKPOINT_DIGEST_FILE);
    const record = JSON.stringify({ digest: sha256Digest(bytes), previous: (await this.currentDigest()) ?? null });
    await rename(await writeTemporary(digestPath, record), digestPath);
    await rename(checkpoint, this.checkpointLocation);
  }

  /** A checkpoint with no digest file at all is one written before digests were (accepted as it is, as it was then). */
  async loadCheckpoint(): Promise<Uint8Array | undefined> {
    const bytes = await readIfThere(this.checkpointLocation);
    if (bytes === undefined) return undefined;
    const digestFile = await readIfThere(join(this.dir, CHECKPOINT_DIGEST_FILE));
    if (digestFile === undefined) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let recorded: { digest?: unknown; previous?: unknown };
    try {
      recorded = JSON.parse(digestFile.toString('utf8')) as typeof recorded;
    } catch {
      recorded = {};
    }
    checkDigest(bytes, [recorded?.digest, recorded?.previous], this.checkpointLocation);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async putStatus(record: JobStatusRecord): Promise<void> {
    await this.beforeWrite?.('writing the status');
    await writeFileAtomic(join(this.dir, STATUS_FILE), `${JSON.stringify(record, null, 2)}\n`);
  }

  async getStatus(): Promise<JobStatusRecord | undefined> {
    const text = await readIfThere(join(this.dir, STATUS_FILE));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text.toString('utf8')) as JobStatusRecord;
    } catch (error) {
      throw new TesseraError(ErrorCode.Internal, `${join(this.dir, STATUS_FILE)} is not JSON: ${(error as Error).message}`, { field: 'status', cause: error });
    }
  }

  async appendRounds(lines: readonly string[]): Promise<void> {
    await this.beforeWrite?.('appending to the round log');
    if (lines.length === 0) return;
    await mkdir(this.dir, { recursive: true });
    await appendFile(join(this.dir, ROUND_LOG), lines.map((line) => `${line}\n`).join(''));
  }

  async readRounds(): Promise<string[]> {
    const text = await readIfThere(join(this.dir, ROUND_LOG));
    return (text?.toString('utf8') ?? '').split('\n').filter((line) => line.trim() !== '');
  }

  async trimRounds(fromRound: number): Promise<string[]> {
    await this.beforeWrite?.('trimming the round log');
    const lines = await this.readRounds();
    const kept = lines.filter((line) => (roundOfLine(line) ?? Infinity) < fromRound);
    if (kept.length !== lines.length) await writeFileAtomic(join(this.dir, ROUND_LOG), kept.map((line) => `${line}\n`).join(''));
    return kept;
  }

  /** Renames rounds.jsonl to rounds-before-<time>.jsonl: it is the only record of that run. */
  async setAsideRounds(now: Date): Promise<string | undefined> {
    await this.beforeWrite?.('setting the round log aside');
    const path = join(this.dir, ROUND_LOG);
    const aside = join(this.dir, `${ROUND_LOG.replace(/\.jsonl$/, '')}-before-${now.toISOString().replace(/[:.]/g, '-')}.jsonl`);
    try {
      await rename(path, aside);
      return aside;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async close(): Promise<void> {}

  /** The digest of the checkpoint in place now: its recorded one, or computed for one from before digests. */
  private async currentDigest(): Promise<string | undefined> {
    const digestFile = await readIfThere(join(this.dir, CHECKPOINT_DIGEST_FILE));
    if (digestFile !== undefined) {
      try {
        const { digest } = JSON.parse(digestFile.toString('utf8')) as { digest?: unknown };
        if (typeof digest === 'string') return digest;
      } catch {
        /* unreadable: computed from the file below */
      }
    }
    const bytes = await readIfThere(this.checkpointLocation);
    return bytes === undefined ? undefined : sha256Digest(bytes);
  }
}

/** The default: each job's state in its own output folder. */
export const folderStores: JobStores = {
  kind: 'folder',
  open: async (_jobId, outputDir, options = {}) => new FolderStore(outputDir, options.beforeWrite),
  has: (_jobId, outputDir) =>
    stat(outputDir).then(
      (found) => found.isDirectory(),
      () => false,
    ),
  close: async () => {},
};
