import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { sha256Digest } from './digest.ts';
import { CHECKPOINT_DIGEST_FILE, CHECKPOINT_FILE, FolderStore } from './folder-store.ts';

/** What only the folder store does; what every store does is test/store-contract.test.ts. */
describe('FolderStore', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-folder-store-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a checkpoint from before digests (no digest file) as it is', async () => {
    writeFileSync(join(dir, CHECKPOINT_FILE), new Uint8Array([1, 2, 3]));
    expect(await new FolderStore(dir).loadCheckpoint()).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('after a crash between writing the digest and renaming the checkpoint, reads the previous checkpoint', async () => {
    const store = new FolderStore(dir);
    await store.saveCheckpoint(new Uint8Array([1, 1, 1]));
    const old = readFileSync(join(dir, CHECKPOINT_FILE));
    await store.saveCheckpoint(new Uint8Array([2, 2, 2]));
    // As if the crash came before the checkpoint's rename: the new digest file beside the old checkpoint.
    writeFileSync(join(dir, CHECKPOINT_FILE), old);
    expect(await store.loadCheckpoint()).toEqual(new Uint8Array([1, 1, 1]));
    // Bytes that neither digest names are refused.
    writeFileSync(join(dir, CHECKPOINT_FILE), new Uint8Array([3, 3, 3]));
    await expect(store.loadCheckpoint()).rejects.toMatchObject({ code: ErrorCode.BadCheckpoint, field: 'checkpoint.digest' });
  });

  it('records the digest of a checkpoint it replaces that had none', async () => {
    writeFileSync(join(dir, CHECKPOINT_FILE), new Uint8Array([9]));
    await new FolderStore(dir).saveCheckpoint(new Uint8Array([8]));
    const recorded = JSON.parse(readFileSync(join(dir, CHECKPOINT_DIGEST_FILE), 'utf8'));
    expect(recorded).toEqual({ digest: sha256Digest(new Uint8Array([8])), previous: sha256Digest(new Uint8Array([9])) });
    expect(readdirSync(dir).sort()).toEqual([CHECKPOINT_FILE, CHECKPOINT_DIGEST_FILE]);
  });
});
