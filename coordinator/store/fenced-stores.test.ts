import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { fencedStores } from './fenced-stores.ts';
import { folderStores } from './folder-store.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A lease's fence as the store sees it: held, suspended (writes wait) or lost (writes refused). */
class TestFence {
  private state: 'held' | 'suspended' | 'lost' = 'held';
  private waiting: { resolve(): void; reject(error: Error): void }[] = [];
  constructor(readonly jobId: string) {}
  whenHeld(): Promise<void> {
    if (this.state === 'held') return Promise.resolve();
    if (this.state === 'lost') return Promise.reject(new Error('lost'));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
  set(state: 'held' | 'suspended' | 'lost'): void {
    this.state = state;
    if (state === 'suspended') return;
    for (const waiter of this.waiting.splice(0)) {
      if (state === 'held') waiter.resolve();
      else waiter.reject(new Error('lost'));
    }
  }
}

describe('fencedStores', () => {
  it('writes while the lease is held, waits while it is unconfirmed, refuses every write once it is lost, and still reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-fenced-'));
    dirs.push(dir);
    const fence = new TestFence('job');
    const store = await fencedStores(folderStores, [fence]).open('job', dir);
    await store.appendRounds([JSON.stringify({ round: 0 })]);
    await store.saveCheckpoint(new Uint8Array([1, 2, 3]));
    // Suspended: the write waits, and lands once a renewal confirms the lease again.
    fence.set('suspended');
    let landed = false;
    const waiting = store.appendRounds([JSON.stringify({ round: 1 })]).then(() => (landed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(landed).toBe(false);
    expect(await store.readRounds()).toEqual([JSON.stringify({ round: 0 })]);
    fence.set('held');
    await waiting;
    expect(await store.readRounds()).toEqual([JSON.stringify({ round: 0 }), JSON.stringify({ round: 1 })]);
    // Lost while a write waits: it is refused, and so is every later one.
    fence.set('suspended');
    const refused = expect.objectContaining({ code: ErrorCode.Internal, field: 'lease' });
    const stranded = store.saveCheckpoint(new Uint8Array([9]));
    fence.set('lost');
    await expect(stranded).rejects.toEqual(refused);
    await expect(store.saveCheckpoint(new Uint8Array([4]))).rejects.toEqual(refused);
    await expect(store.appendRounds([JSON.stringify({ round: 2 })])).rejects.toEqual(refused);
    await expect(store.trimRounds(0)).rejects.toEqual(refused);
    await expect(store.setAsideRounds(new Date())).rejects.toEqual(refused);
    expect(await store.loadCheckpoint()).toEqual(new Uint8Array([1, 2, 3]));
    expect(await store.readRounds()).toHaveLength(2);
  });

  it('leaves a job no fence names as it is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-fenced-'));
    dirs.push(dir);
    const fence = new TestFence('other');
    fence.set('lost');
    const store = await fencedStores(folderStores, [fence]).open('job', dir);
    await store.saveCheckpoint(new Uint8Array([1]));
    expect(await store.loadCheckpoint()).toEqual(new Uint8Array([1]));
  });
});
