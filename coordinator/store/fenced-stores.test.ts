import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { fencedStores } from './fenced-stores.ts';
import { folderStores } from './folder-store.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('fencedStores', () => {
  it('writes while the lease is held, refuses every write once it is not, and still reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-fenced-'));
    dirs.push(dir);
    const fence = { jobId: 'job', held: true };
    const store = await fencedStores(folderStores, [fence]).open('job', dir);
    await store.appendRounds([JSON.stringify({ round: 0 })]);
    await store.saveCheckpoint(new Uint8Array([1, 2, 3]));
    fence.held = false;
    const refused = expect.objectContaining({ code: ErrorCode.Internal, field: 'lease' });
    await expect(store.saveCheckpoint(new Uint8Array([4]))).rejects.toEqual(refused);
    await expect(store.appendRounds([JSON.stringify({ round: 1 })])).rejects.toEqual(refused);
    await expect(store.trimRounds(0)).rejects.toEqual(refused);
    await expect(store.setAsideRounds(new Date())).rejects.toEqual(refused);
    expect(await store.loadCheckpoint()).toEqual(new Uint8Array([1, 2, 3]));
    expect(await store.readRounds()).toEqual([JSON.stringify({ round: 0 })]);
  });

  it('leaves a job no fence names as it is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-fenced-'));
    dirs.push(dir);
    const store = await fencedStores(folderStores, [{ jobId: 'other', held: false }]).open('job', dir);
    await store.saveCheckpoint(new Uint8Array([1]));
    expect(await store.loadCheckpoint()).toEqual(new Uint8Array([1]));
  });
});
