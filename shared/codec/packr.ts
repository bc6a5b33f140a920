import { Packr } from 'msgpackr';
import { ErrorCode, TesseraError, isTesseraError } from '../protocol/errors.ts';

/**
 * One Packr for every protocol message. Records are off because both sides
 * would have to share structure state; maps decode as plain objects.
 * moreTypes stays off: with it a plain Uint8Array becomes an extension in Node
 * but bin in browsers. Consequence: only Uint8Array survives packing — pass any
 * other typed array as bytesOf(view), or msgpackr silently truncates its elements.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** The longest msgpackr error text kept in our message (its text can embed decoded data). */
const MAX_CAUSE_TEXT = 120;

/**
 * Packs a whole protocol message. The result views msgpackr's shared output
 * buffer (never overwritten, but it keeps that buffer alive): slice() it
 * before holding on to it for long.
 */
export function pack(value: unknown): Uint8Array {
  const out = packr.pack(value);
  // Hand out a plain Uint8Array: a Node Buffer's slice() is a view, not a copy.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Messages packed once by packOnce, by identity. */
const packedOnce = new WeakMap<object, Uint8Array>();

/**
 * Packs a message that goes to many connections unchanged (a weights
 * version, answered to every worker that fetches it) now, once: the
 * transports' packMessage hands out these bytes for it from then on. The
 * message must not change afterwards.
 */
export function packOnce<T extends object>(message: T): T {
  packedOnce.set(message, pack(message).slice());
  return message;
}

/**
 * A message's bytes for a transport to send: those packOnce kept, else packed
 * now. `keep`: the caller holds on to them (queues them), so fresh packs are
 * copied out of msgpackr's shared buffer.
 */
export function packMessage(message: object, keep = false): Uint8Array {
  const packed = packedOnce.get(message);
  if (packed) return packed;
  return keep ? pack(message).slice() : pack(message);
}

/**
 * Unpacks a whole protocol message; any failure (truncated, not msgpack,
 * trailing bytes) becomes DecodeFailed. The result is untrusted: validate it.
 * Byte strings inside are views of `bytes` (Buffers in Node): copy before keeping.
 */
export function unpack(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new TesseraError(ErrorCode.DecodeFailed, 'message is not a byte array');
  }
  if (bytes.byteLength === 0) throw new TesseraError(ErrorCode.DecodeFailed, 'message is empty');
  try {
    const value = packr.unpack(bytes);
    // msgpackr hands back a placeholder object for the reserved byte 0xC1 instead of failing.
    if (isReservedPlaceholder(value)) throw new TesseraError(ErrorCode.DecodeFailed, 'message holds the reserved msgpack byte 0xC1');
    return value;
  } catch (cause) {
    if (isTesseraError(cause)) throw cause;
    const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    const short = text.length > MAX_CAUSE_TEXT ? `${text.slice(0, MAX_CAUSE_TEXT)}…` : text;
    throw new TesseraError(ErrorCode.DecodeFailed, `message is not valid msgpack (${short})`, { cause });
  }
}

function isReservedPlaceholder(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { constructor?: { name?: string } }).constructor?.name === 'C1Type';
}

/** A Uint8Array over exactly the bytes of `view` (no copy), e.g. to pack a Float32Array. */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** A typed-array class that can be built from a length. */
export interface TypedArrayClass<T extends ArrayBufferView> {
  new (length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

/**
 * Copies bytes into a fresh `ctor` array. Needed because decoded byte strings
 * are views at arbitrary offsets of the message, where e.g. a Float32Array
 * cannot start, and because the result must not alias the message.
 * Throws a RangeError if the byte length is not a multiple of the element size.
 */
export function alignedCopy<T extends ArrayBufferView>(bytes: Uint8Array, ctor: TypedArrayClass<T>): T {
  if (bytes.byteLength % ctor.BYTES_PER_ELEMENT !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${ctor.BYTES_PER_ELEMENT}-byte elements`);
  }
  const out = new ctor(bytes.byteLength / ctor.BYTES_PER_ELEMENT);
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  return out;
}
