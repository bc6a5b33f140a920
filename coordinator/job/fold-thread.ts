import type { Worker } from 'node:worker_threads';
import { startTypeScriptThread } from '../../runtime/node/typescript-thread.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { takeOver } from '../transports/handed-over.ts';
import type { FoldOpen, FoldReply, FoldRequest } from './fold-protocol.ts';

/** What the thread folded of a round: each network's state and held updates, and the outliers its clip flagged. */
export type ThreadFold = Omit<Extract<FoldReply, { type: 'closed' }>, 'type' | 'round'>;

/**
 * A worker_thread that decodes, checks and folds a large round's updates
 * (coordinator/job/fold-thread-entry.ts), so the event loop only reads them
 * off the sockets, answers and opens the next round: with hundreds of
 * workers reporting at once, checking and folding on the event loop made
 * them wait in line (docs/performance.md). Started at the first round that
 * uses it; a thread that dies fails what it had been sent (those updates'
 * round drops what it had folded there) and is started again for the next.
 */
export class FoldThread {
  private worker: Worker | undefined;
  private openRound = -1;
  /** The round whose fold died with a thread: its other updates are folded on the event loop (Job.acceptUpdate). */
  private lostRound = -1;
  private readonly checks = new Map<string, { resolve(): void; reject(error: Error): void }>();
  private closing: { round: number; resolve(fold: ThreadFold): void; reject(error: Error): void } | undefined;
  private readonly buffers = new SpentBuffers();

  /**
   * Checks and folds one update of `round` in the thread; resolves once it
   * was folded, rejects with the TesseraError the checks raised. The first
   * check of a round opens the thread's fold on `open()` (which replaces a
   * fold never closed). `bytes` are copied: the caller's message is left as
   * it was.
   */
  check(round: number, open: () => FoldOpen, workerId: string, codec: string, bytes: Uint8Array): Promise<void> {
    const worker = (this.worker ??= this.start());
    if (this.openRound !== round) {
      this.send(worker, open());
      this.openRound = round;
    }
    const key = `${round}/${workerId}`;
    // A handed-over message's own buffer moves, the update's view of it with it: no copy, and none of the event loop's
    // garbage. Else a copy of its own moves: `bytes` may be a view of a buffer others read too (a socket read's, a pool's).
    const handedOver = takeOver(bytes);
    const moved = handedOver ? new Uint8Array(handedOver, bytes.byteOffset, bytes.byteLength) : this.buffers.copyOf(bytes);
    return new Promise<void>((resolve, reject) => {
      this.checks.set(key, { resolve, reject });
      this.send(worker, { type: 'check', round, workerId, codec, bytes: moved, giveBack: !handedOver }, [moved.buffer]);
    });
  }

  /** Starts the thread now, if none runs: a round that will use it opened, and the thread takes a moment to load. */
  warm(): void {
    this.worker ??= this.start();
  }

  /** True when a thread died with `round`'s fold: what it had folded is gone, and the round folds no more there. */
  lost(round: number): boolean {
    return this.lostRound === round;
  }

  /** Closes the open round's fold: what the thread folded, once every check sent before is answered. */
  close(): Promise<ThreadFold> {
    const worker = this.worker;
    const round = this.openRound;
    if (!worker || round === -1) return Promise.reject(new Error(this.lostRound !== -1 ? 'the fold thread died' : 'the fold thread has no round open'));
    this.openRound = -1;
    return new Promise<ThreadFold>((resolve, reject) => {
      this.closing = { round, resolve, reject };
      this.send(worker, { type: 'close', round });
    });
  }

  /** Ends the thread; what is in flight fails. */
  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.fail(new Error('the fold thread was closed'));
    await worker?.terminate();
  }

  private send(worker: Worker, message: FoldRequest, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(message, transfer);
  }

  private start(): Worker {
    // Its garbage is short-lived message objects (the decoded tensors live outside the heap): a small young generation
    // keeps its RSS down (500 workers' load test: +171 MB peak for the coordinator against +194-200 MB with V8's default).
    const worker = startTypeScriptThread(new URL('./fold-thread-entry.ts', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    // Idle between rounds, it must not keep a coordinator that is done from exiting.
    worker.unref();
    worker.on('message', (reply: FoldReply) => this.answer(reply));
    const died = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.fail(error);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`the fold thread exited (code ${code})`)));
    return worker;
  }

  private answer(reply: FoldReply): void {
    if (reply.type === 'closed' || reply.type === 'failed') {
      const closing = this.closing;
      if (closing?.round !== reply.round) return;
      this.closing = undefined;
      if (reply.type === 'closed') closing.resolve({ states: reply.states, held: reply.held, outliers: reply.outliers });
      else closing.reject(new Error(reply.message));
      return;
    }
    if (reply.spent) this.buffers.give(reply.spent);
    const key = `${reply.round}/${reply.workerId}`;
    const check = this.checks.get(key);
    if (!check) return;
    this.checks.delete(key);
    if (reply.type === 'checked') check.resolve();
    else check.reject(new TesseraError(reply.code, reply.message, reply.field === undefined ? {} : { field: reply.field }));
  }

  /** The thread is gone: every check in flight and the close fail (the updates they held are lost with it). */
  private fail(error: Error): void {
    if (this.openRound !== -1) this.lostRound = this.openRound;
    this.openRound = -1;
    const failure = new TesseraError(ErrorCode.Internal, `${error.message}: the update could not be checked`);
    for (const check of this.checks.values()) check.reject(failure);
    this.checks.clear();
    const closing = this.closing;
    this.closing = undefined;
    closing?.reject(error);
  }
}

/** Most bytes of spent buffers kept: as many are in use as updates wait for the thread, so this only bounds a backlog. */
const SPENT_BYTES = 32 * 1024 * 1024;

/**
 * The buffers the thread gave back, by size, for the next updates' copies:
 * updates of one job are mostly of one size, and a fresh 88 KB buffer per
 * update (its pages touched for the first time, then left to the garbage
 * collector) cost the event loop more than the copy into it.
 */
class SpentBuffers {
  private readonly bySize = new Map<number, ArrayBuffer[]>();
  private bytes = 0;

  /** A copy of `bytes`, in a spent buffer of their size if there is one, else in a new one. */
  copyOf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
    const size = bytes.byteLength;
    const buffer = this.bySize.get(size)?.pop();
    if (buffer) this.bytes -= size;
    const copy = new Uint8Array(buffer ?? new ArrayBuffer(size));
    copy.set(bytes);
    return copy;
  }

  /** Keeps `spent`'s buffer when it is whole (not a view of a larger one) and there is room. */
  give(spent: Uint8Array): void {
    const buffer = spent.buffer as ArrayBuffer;
    if (spent.byteOffset !== 0 || spent.byteLength !== buffer.byteLength || this.bytes + buffer.byteLength > SPENT_BYTES) return;
    const list = this.bySize.get(buffer.byteLength) ?? [];
    list.push(buffer);
    this.bySize.set(buffer.byteLength, list);
    this.bytes += buffer.byteLength;
  }
}
