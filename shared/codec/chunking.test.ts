import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { CHUNK_MARKER, isChunk, Reassembler, splitMessage } from './chunking.ts';
import { mulberry32, randomBytes } from './test-utils.ts';

const MiB = 1024 * 1024;
/** Byte offsets of the chunk header fields (see the layout in chunking.ts). */
const COUNT_OFFSET = 10;
const SIZE_OFFSET = 14;
const HEADER_BYTES = 50;

/** `CODE field` of the TesseraError a promise rejects with, 'ok' if it resolves. */
async function failureOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    return error instanceof TesseraError ? `${error.code} ${error.field}` : `ESCAPED ${error}`;
  }
}

/** Feeds frames in order and returns every message the reassembler completed. */
async function feed(reassembler: Reassembler, sender: string, frames: Uint8Array[], now = 0): Promise<Uint8Array[]> {
  const completed: Uint8Array[] = [];
  for (const frame of frames) {
    const message = await reassembler.add(sender, frame, now);
    if (message) completed.push(message);
  }
  return completed;
}

/** Index of the first byte where two arrays differ, or -1 (vitest's toEqual takes seconds per MB). */
function firstDifference(a: Uint8Array | undefined, b: Uint8Array): number {
  if (!a) return 0;
  const length = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? -1 : length;
}

/** A seeded Fisher–Yates shuffle (a copy). */
function shuffled<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A copy of a frame with one big-endian u32 header field rewritten. */
function withHeader(frame: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = frame.slice();
  new DataView(copy.buffer).setUint32(offset, value);
  return copy;
}

/** A random message that does not start with the chunk marker (so it may go whole). */
function randomMessage(length: number, seed: number): Uint8Array {
  const message = randomBytes(length, mulberry32(seed));
  if (message[0] === CHUNK_MARKER) message[0] = 0x80;
  return message;
}

describe('splitMessage', () => {
  it('sends a message that fits as the single original frame', async () => {
    const message = randomMessage(1000, 1);
    const frames = await splitMessage(message, 1000, 1);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toBe(message);
    expect(isChunk(frames[0])).toBe(false);
  });

  it('chunks a message whose first byte is 0xC1 even when it fits, so it is never taken for a chunk', async () => {
    const message = new Uint8Array([CHUNK_MARKER, 1, 2, 3]);
    const frames = await splitMessage(message, MiB, 9);
    expect(frames).toHaveLength(1);
    expect(frames[0]).not.toBe(message);
    expect(isChunk(frames[0])).toBe(true);
    expect(frames[0].byteLength).toBe(HEADER_BYTES + message.byteLength);
    const back = await new Reassembler(MiB).add('w', frames[0], 0);
    expect(back).toEqual(message);
  });

  it('refuses frames too small to hold a chunk header', async () => {
    await expect(splitMessage(randomMessage(100, 2), HEADER_BYTES, 1)).rejects.toThrow(RangeError);
  });
});

describe('Reassembler', () => {
  it('puts a 4 MB message split into 1 MiB frames back byte-exact', async () => {
    const message = randomMessage(4 * MiB, 3);
    const frames = await splitMessage(message, MiB, 42);
    expect(frames.length).toBe(5); // 4 MiB of payload does not fit in 4 frames once each carries a header
    for (const frame of frames) {
      expect(frame.byteLength).toBeLessThanOrEqual(MiB);
      expect(isChunk(frame)).toBe(true);
    }
    const reassembler = new Reassembler(8 * MiB);
    const results = [];
    for (const frame of frames) results.push(await reassembler.add('worker-1', frame, 0));
    expect(results.slice(0, -1).every((result) => result === undefined)).toBe(true);
    expect(firstDifference(results.at(-1), message)).toBe(-1);
    expect(reassembler.pending).toBe(0);
  });

  it('reassembles chunks that arrive in shuffled order', async () => {
    const message = randomMessage(100_000, 4);
    const frames = await splitMessage(message, 4096, 5);
    expect(frames.length).toBeGreaterThan(20);
    const completed = await feed(new Reassembler(MiB), 'w', shuffled(frames, mulberry32(5)));
    expect(completed).toHaveLength(1);
    expect(firstDifference(completed[0], message)).toBe(-1);
  });

  it('keeps two senders and two message ids apart when their chunks interleave', async () => {
    // Both senders use ids 1 and 2: only the sender tells a/1 from b/1.
    const streams: { sender: string; message: Uint8Array; frames: Uint8Array[] }[] = [];
    let seed = 10;
    for (const sender of ['a', 'b']) {
      for (const id of [1, 2]) {
        const message = randomMessage(20_000 + seed * 7, seed++);
        streams.push({ sender, message, frames: await splitMessage(message, 2048, id) });
      }
    }
    const reassembler = new Reassembler(MiB);
    const completed = new Map<string, Uint8Array>();
    const longest = Math.max(...streams.map((stream) => stream.frames.length));
    for (let i = 0; i < longest; i++) {
      for (const [n, stream] of streams.entries()) {
        if (i >= stream.frames.length) continue;
        const message = await reassembler.add(stream.sender, stream.frames[i], 0);
        if (message) completed.set(`${n}`, message);
      }
    }
    expect(completed.size).toBe(4);
    for (const [n, stream] of streams.entries()) expect(firstDifference(completed.get(`${n}`), stream.message)).toBe(-1);
    expect(reassembler.pending).toBe(0);
  });

  it('ignores a duplicated identical chunk: the message completes once', async () => {
    const message = randomMessage(10_000, 20);
    const frames = await splitMessage(message, 2048, 3);
    const withDuplicates = [frames[0], frames[1], frames[1].slice(), ...frames.slice(2)];
    const reassembler = new Reassembler(MiB);
    const completed = await feed(reassembler, 'w', withDuplicates);
    expect(completed).toHaveLength(1);
    expect(firstDifference(completed[0], message)).toBe(-1);
    // A late copy of a chunk after completion does not hand the message out again.
    expect(await reassembler.add('w', frames[1].slice(), 0)).toBeUndefined();
  });

  it('rejects a duplicated chunk with different bytes and drops the message', async () => {
    const frames = await splitMessage(randomMessage(10_000, 21), 2048, 3);
    const reassembler = new Reassembler(MiB);
    await reassembler.add('w', frames[0], 0);
    const altered = frames[0].slice();
    altered[HEADER_BYTES + 7] ^= 0xff;
    expect(await failureOf(reassembler.add('w', altered, 0))).toBe(`${ErrorCode.DecodeFailed} chunk.index`);
    expect(reassembler.pending).toBe(0);
  });

  it('rejects a chunk whose count or size disagrees with the first chunk', async () => {
    const frames = await splitMessage(randomMessage(10_000, 22), 2048, 3);
    const count = frames.length;
    for (const contradicting of [withHeader(frames[1], COUNT_OFFSET, count + 1), withHeader(frames[1], SIZE_OFFSET, 10_001)]) {
      const reassembler = new Reassembler(MiB);
      await reassembler.add('w', frames[0], 0);
      expect(await failureOf(reassembler.add('w', contradicting, 0))).toBe(`${ErrorCode.DecodeFailed} chunk`);
      expect(reassembler.pending).toBe(0);
    }
    // Another message of another size reusing the id contradicts the first just the same.
    const other = await splitMessage(randomMessage(9_000, 23), 2048, 3);
    const reassembler = new Reassembler(MiB);
    await reassembler.add('w', frames[0], 0);
    expect(await failureOf(reassembler.add('w', other[1], 0))).toBe(`${ErrorCode.DecodeFailed} chunk`);
  });

  it('rejects a header with an impossible index or an unknown format', async () => {
    const frames = await splitMessage(randomMessage(10_000, 24), 2048, 3);
    const reassembler = new Reassembler(MiB);
    expect(await failureOf(reassembler.add('w', withHeader(frames[0], 6, frames.length), 0))).toBe(`${ErrorCode.DecodeFailed} chunk.index`);
    expect(await failureOf(reassembler.add('w', withHeader(frames[0], COUNT_OFFSET, 0), 0))).toBe(`${ErrorCode.DecodeFailed} chunk.index`);
    const future = frames[0].slice();
    future[1] = 2;
    expect(await failureOf(reassembler.add('w', future, 0))).toBe(`${ErrorCode.DecodeFailed} chunk.format`);
  });

  it('rejects a message with a flipped payload byte by its hash and never returns it', async () => {
    const frames = await splitMessage(randomMessage(10_000, 25), 2048, 3);
    frames[2] = frames[2].slice();
    frames[2][HEADER_BYTES + 100] ^= 0x01;
    const reassembler = new Reassembler(MiB);
    const returned: (Uint8Array | undefined)[] = [];
    for (const frame of frames.slice(0, -1)) returned.push(await reassembler.add('w', frame, 0));
    expect(returned.every((result) => result === undefined)).toBe(true);
    expect(await failureOf(reassembler.add('w', frames.at(-1)!, 0))).toBe(`${ErrorCode.DecodeFailed} chunk.hash`);
    expect(reassembler.pending).toBe(0);
  });

  it('rejects a frame shorter than the chunk header', async () => {
    const frames = await splitMessage(randomMessage(10_000, 26), 2048, 3);
    const reassembler = new Reassembler(MiB);
    expect(await failureOf(reassembler.add('w', frames[0].subarray(0, HEADER_BYTES - 1), 0))).toBe(`${ErrorCode.DecodeFailed} chunk`);
    expect(await failureOf(reassembler.add('w', new Uint8Array([CHUNK_MARKER]), 0))).toBe(`${ErrorCode.DecodeFailed} chunk`);
    expect(reassembler.pending).toBe(0);
  });

  it('never completes a message that lost a chunk; expire reports the sender and forgets it', async () => {
    const frames = await splitMessage(randomMessage(10_000, 27), 2048, 3);
    const reassembler = new Reassembler(MiB);
    const startedAt = 1_000;
    const completed = await feed(reassembler, 'worker-7', [...frames.slice(0, 2), ...frames.slice(3)], startedAt);
    expect(completed).toHaveLength(0);
    expect(reassembler.pending).toBe(1);
    expect(reassembler.expire(startedAt + 4_999, 5_000)).toEqual([]);
    expect(reassembler.expire(startedAt + 5_000, 5_000)).toEqual([{ sender: 'worker-7', received: frames.length - 1, count: frames.length }]);
    expect(reassembler.pending).toBe(0);
    expect(reassembler.expire(startedAt + 60_000, 5_000)).toEqual([]);
    // The lost chunk turning up after all starts over rather than completing a forgotten message.
    expect(await reassembler.add('worker-7', frames[2], startedAt + 6_000)).toBeUndefined();
  });

  it('forget drops only that sender’s partial messages', async () => {
    const frames = await splitMessage(randomMessage(10_000, 28), 2048, 3);
    const reassembler = new Reassembler(MiB);
    // worker-1 is a prefix of worker-10: forgetting one must not touch the other.
    for (const sender of ['worker-1', 'worker-10']) await reassembler.add(sender, frames[0], 0);
    await reassembler.add('worker-1', (await splitMessage(randomMessage(10_000, 29), 2048, 4))[0], 0);
    expect(reassembler.pending).toBe(3);
    reassembler.forget('worker-1');
    expect(reassembler.pending).toBe(1);
    expect(reassembler.expire(10, 0)).toEqual([{ sender: 'worker-10', received: 1, count: frames.length }]);
  });

  it('refuses a message above its limit on the first chunk with TOO_LARGE', async () => {
    const frames = await splitMessage(randomMessage(10_000, 30), 2048, 3);
    const reassembler = new Reassembler(9_999);
    expect(await failureOf(reassembler.add('w', frames[0], 0))).toBe(`${ErrorCode.TooLarge} chunk.size`);
    expect(reassembler.pending).toBe(0);
    expect(await feed(new Reassembler(10_000), 'w', frames)).toHaveLength(1);
  });

  it('holds no more than a message declared: chunks that add up to more are refused at the first excess', async () => {
    const frames = await splitMessage(randomMessage(10_000, 31), 2048, 3);
    // The same header (size 10,000) on chunks of another, larger message: what a liar would send.
    const big = await splitMessage(randomMessage(40_000, 32), 2048, 3);
    const lying = big.map((frame, index) => {
      const copy = frame.slice();
      copy.set(frames[0].subarray(0, HEADER_BYTES));
      new DataView(copy.buffer).setUint32(6, index % frames.length);
      return copy;
    });
    const reassembler = new Reassembler(MiB);
    const results: string[] = [];
    for (const frame of lying.slice(0, 6)) results.push(await failureOf(reassembler.add('w', frame, 0)));
    expect(results).toEqual([...new Array(5).fill('ok'), `${ErrorCode.DecodeFailed} chunk.size`]);
    expect(reassembler.reserved).toBe(0);
  });

  it('keeps within its budget: partial messages per sender, declared bytes in all, and a per-sender limit', async () => {
    const messages = await Promise.all([1, 2, 3].map(async (seed) => splitMessage(randomMessage(10_000, 40 + seed), 2048, seed)));
    const perSender = new Reassembler(MiB, { maxPendingPerSender: 2 });
    await perSender.add('w', messages[0][0], 0);
    await perSender.add('w', messages[1][0], 0);
    expect(await failureOf(perSender.add('w', messages[2][0], 0))).toBe(`${ErrorCode.RateLimited} message`);
    // Another sender has its own allowance; a finished message gives its place back.
    expect(await failureOf(perSender.add('v', messages[2][0], 0))).toBe('ok');
    expect(await feed(perSender, 'w', messages[0].slice(1))).toHaveLength(1);
    expect(await failureOf(perSender.add('w', messages[2][0], 0))).toBe('ok');

    const total = new Reassembler(MiB, { maxTotalBytes: 25_000 });
    await total.add('a', messages[0][0], 0);
    await total.add('b', messages[1][0], 0);
    expect(total.reserved).toBe(20_000);
    expect(await failureOf(total.add('c', messages[2][0], 0))).toBe(`${ErrorCode.RateLimited} message`);
    total.forget('a');
    expect(await failureOf(total.add('c', messages[2][0], 0))).toBe('ok');

    expect(await failureOf(new Reassembler(MiB).add('w', messages[0][0], 0, 9_999))).toBe(`${ErrorCode.TooLarge} chunk.size`);
  });
});
