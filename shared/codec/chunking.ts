import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { contentHash } from './named.ts';

/**
 * Splitting messages larger than a bus's payload limit (NATS: 1 MB by
 * default) into chunks, and putting them back together with integrity checks.
 *
 * A chunk frame starts with 0xC1, the one byte msgpack never uses, so a
 * receiver tells a chunk from a whole message by its first byte. Layout
 * (big-endian): 0xC1, format version (1), message id (u32), chunk index (u32),
 * chunk count (u32), total size (u32), SHA-256 of the whole message (32
 * bytes), then the chunk's bytes.
 */
export const CHUNK_MARKER = 0xc1;
const FORMAT = 1;
const HEADER_BYTES = 1 + 1 + 4 + 4 + 4 + 4 + 32;
/** A message never needs more chunks than this (4096 x 1 MB); a header claiming more is corrupt. */
const MAX_CHUNKS = 4096;

export function isChunk(frame: Uint8Array): boolean {
  return frame.byteLength > 0 && frame[0] === CHUNK_MARKER;
}

/** The frames to send for `message`: the message itself when it fits, else chunks of at most `maxFrameBytes`. */
export async function splitMessage(message: Uint8Array, maxFrameBytes: number, messageId: number): Promise<Uint8Array[]> {
  if (message.byteLength <= maxFrameBytes && !isChunk(message)) return [message];
  const payloadBytes = maxFrameBytes - HEADER_BYTES;
  if (payloadBytes < 1) throw new RangeError(`frames of ${maxFrameBytes} bytes cannot hold a chunk header`);
  const count = Math.max(1, Math.ceil(message.byteLength / payloadBytes));
  if (count > MAX_CHUNKS) throw new TesseraError(ErrorCode.TooLarge, `a message of ${message.byteLength} bytes needs ${count} chunks, more than ${MAX_CHUNKS}`);
  const hash = hexToBytes(await contentHash(message));
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const part = message.subarray(index * payloadBytes, Math.min(message.byteLength, (index + 1) * payloadBytes));
    const frame = new Uint8Array(HEADER_BYTES + part.byteLength);
    const view = new DataView(frame.buffer);
    frame[0] = CHUNK_MARKER;
    frame[1] = FORMAT;
    view.setUint32(2, messageId >>> 0);
    view.setUint32(6, index);
    view.setUint32(10, count);
    view.setUint32(14, message.byteLength);
    frame.set(hash, 18);
    frame.set(part, HEADER_BYTES);
    frames.push(frame);
  }
  return frames;
}

interface Partial {
  count: number;
  size: number;
  /** Bytes of the parts held so far: never more than `size`. */
  bytes: number;
  hash: Uint8Array;
  parts: (Uint8Array | undefined)[];
  received: number;
  startedAt: number;
}

/** What a Reassembler holds at most while messages come in pieces; unbounded unless set (a worker trusts its coordinator). */
export interface ReassemblyBudget {
  /** Declared bytes of all partial messages together, over every sender. */
  maxTotalBytes?: number;
  /** Partial messages one sender may have at once. */
  maxPendingPerSender?: number;
}

/**
 * Collects chunks per sender and message id and returns each message once it
 * is whole and its size and hash check out. A duplicated chunk with the same
 * bytes is ignored (at-least-once delivery); one that differs, a header that
 * contradicts the first, or a hash mismatch is an error. `expire` reports
 * messages whose chunks stopped coming (a lost chunk), so the sender can be
 * asked again. A message's declared size is reserved against the budget at
 * its first chunk, and no sender's chunks add up to more than it declared.
 */
export class Reassembler {
  private readonly partials = new Map<string, Partial>();
  private readonly pendingBySender = new Map<string, number>();
  private reservedBytes = 0;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly budget: ReassemblyBudget = {},
  ) {}

  /**
   * Adds one chunk frame; resolves to the whole message when this chunk
   * completes it, else undefined. `maxMessageBytes` is this sender's limit
   * now (the constructor's by default).
   */
  async add(sender: string, frame: Uint8Array, now: number, maxMessageBytes = this.maxMessageBytes): Promise<Uint8Array | undefined> {
    if (frame.byteLength < HEADER_BYTES || frame[0] !== CHUNK_MARKER) throw chunkError('a chunk frame shorter than its header', 'chunk');
    if (frame[1] !== FORMAT) throw chunkError(`chunk format ${frame[1]}, expected ${FORMAT}`, 'chunk.format');
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const id = view.getUint32(2);
    const index = view.getUint32(6);
    const count = view.getUint32(10);
    const size = view.getUint32(14);
    const hash = frame.subarray(18, HEADER_BYTES);
    if (count < 1 || count > MAX_CHUNKS || index >= count) throw chunkError(`chunk ${index} of ${count}`, 'chunk.index');
    if (size > maxMessageBytes)
      throw new TesseraError(ErrorCode.TooLarge, `a chunked message of ${size} bytes, above ${maxMessageBytes}`, { field: 'chunk.size' });
    // Every chunk carries at least one byte.
    if (count > Math.max(1, size)) throw chunkError(`${count} chunks for ${size} bytes`, 'chunk.index');
    const key = `${sender}/${id}`;
    let partial = this.partials.get(key);
    if (!partial) {
      this.reserve(sender, size);
      partial = { count, size, bytes: 0, hash: hash.slice(), parts: new Array(count), received: 0, startedAt: now };
      this.partials.set(key, partial);
    } else if (partial.count !== count || partial.size !== size || !sameBytes(partial.hash, hash)) {
      this.drop(key);
      throw chunkError(`chunk ${index} of message ${id} disagrees with its first chunk`, 'chunk');
    }
    const part = frame.subarray(HEADER_BYTES);
    const existing = partial.parts[index];
    if (existing) {
      if (!sameBytes(existing, part)) {
        this.drop(key);
        throw chunkError(`chunk ${index} of message ${id} arrived twice with different bytes`, 'chunk.index');
      }
      return undefined;
    }
    if (partial.bytes + part.byteLength > partial.size) {
      this.drop(key);
      throw chunkError(`message ${id}: chunks add up to more than ${partial.size} bytes`, 'chunk.size');
    }
    partial.parts[index] = part.slice();
    partial.bytes += part.byteLength;
    partial.received += 1;
    if (partial.received < partial.count) return undefined;
    this.drop(key);
    const message = new Uint8Array(partial.size);
    let offset = 0;
    for (const piece of partial.parts) {
      message.set(piece!, offset);
      offset += piece!.byteLength;
    }
    if (offset !== partial.size) throw chunkError(`message ${id}: chunks add up to ${offset} bytes, expected ${partial.size}`, 'chunk.size');
    if (!sameBytes(hexToBytes(await contentHash(message)), partial.hash)) throw chunkError(`message ${id}: SHA-256 does not match`, 'chunk.hash');
    return message;
  }

  /** Drops and returns the senders of messages still incomplete after `maxAgeMs`. */
  expire(now: number, maxAgeMs: number): { sender: string; received: number; count: number }[] {
    const expired: { sender: string; received: number; count: number }[] = [];
    for (const [key, partial] of this.partials) {
      if (now - partial.startedAt < maxAgeMs) continue;
      this.drop(key);
      expired.push({ sender: key.slice(0, key.lastIndexOf('/')), received: partial.received, count: partial.count });
    }
    return expired;
  }

  /** Forgets a sender's partial messages (it left). */
  forget(sender: string): void {
    for (const key of this.partials.keys()) if (key.startsWith(`${sender}/`)) this.drop(key);
  }

  get pending(): number {
    return this.partials.size;
  }

  /** Declared bytes of the partial messages held now. */
  get reserved(): number {
    return this.reservedBytes;
  }

  /** Takes a new partial message's declared size from the budget, or refuses it. */
  private reserve(sender: string, size: number): void {
    const pending = this.pendingBySender.get(sender) ?? 0;
    const { maxPendingPerSender = Infinity, maxTotalBytes = Infinity } = this.budget;
    // Field `message`, not `chunk`: a sender told of a bad chunk sends the whole message again at once, which would only add to the load.
    if (pending >= maxPendingPerSender) {
      throw new TesseraError(ErrorCode.RateLimited, `${pending} chunked messages of this sender are incomplete already; at most ${maxPendingPerSender}`, {
        field: 'message',
      });
    }
    if (this.reservedBytes + size > maxTotalBytes) {
      throw new TesseraError(
        ErrorCode.RateLimited,
        `${this.reservedBytes} bytes of chunked messages are being put together already; at most ${maxTotalBytes}`,
        { field: 'message' },
      );
    }
    this.pendingBySender.set(sender, pending + 1);
    this.reservedBytes += size;
  }

  /** Forgets a partial message and gives its reservation back. */
  private drop(key: string): void {
    const partial = this.partials.get(key);
    if (!partial) return;
    this.partials.delete(key);
    this.reservedBytes -= partial.size;
    const sender = key.slice(0, key.lastIndexOf('/'));
    const pending = (this.pendingBySender.get(sender) ?? 1) - 1;
    if (pending > 0) this.pendingBySender.set(sender, pending);
    else this.pendingBySender.delete(sender);
  }
}

function chunkError(message: string, field: string): TesseraError {
  return new TesseraError(ErrorCode.DecodeFailed, message, { field });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hexToBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}
