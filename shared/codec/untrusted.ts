import { ErrorCode, TesseraError } from '../protocol/errors.ts';

/**
 * The one msgpack decoder for bytes from peers the coordinator does not
 * trust. Unlike msgpackr it knows no extension types (no Date, Set, RegExp,
 * Error, BigInt, undefined), never makes a BigInt (64-bit integers outside
 * the safe range are refused), and checks every declared length against a
 * budget and against the bytes that remain *before* it allocates: 64 MB of
 * empty maps, which msgpackr turns into 64 M objects (gigabytes of heap),
 * stop at the element budget after a few hundred.
 *
 * Maps become plain objects with string keys only (a `__proto__` key or a
 * duplicate key is refused); byte strings become Uint8Array views of the
 * input (copy before keeping them past the message).
 */

/** How much one message may make the decoder build. */
export interface DecodeBudget {
  /** Bytes of the whole message. */
  maxBytes: number;
  /** Values in all: each array item, map key and map value, and the containers themselves. */
  maxElements: number;
  /** Nesting of arrays and maps; the message itself is depth 1 when it is a map. */
  maxDepth: number;
  /** Bytes of one string (UTF-8). */
  maxStringBytes: number;
  /** Bytes of all strings of the message together. */
  maxTotalStringBytes: number;
  /** Bytes of one byte string. */
  maxBinBytes: number;
}

/** A refusal on its way up: the path is built as it passes each container, only when something failed. */
class Refusal {
  readonly path: string[] = [];
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
  ) {}
}

// ignoreBOM keeps a leading U+FEFF as the sender wrote it (the default would strip it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Longest key shown in an error's field: the key is the sender's. */
const SHOWN_KEY = 40;

/**
 * Decodes one msgpack value from untrusted bytes within `budget`. Throws a
 * TesseraError: DecodeFailed for bytes that are not msgpack this protocol
 * accepts, TooLarge when a budget is exceeded (the message names which); the
 * field is the path where it happened, e.g. `tensors[2].name`.
 */
export function decodeUntrusted(bytes: Uint8Array, budget: DecodeBudget): unknown {
  if (!(bytes instanceof Uint8Array)) throw new TesseraError(ErrorCode.DecodeFailed, 'message is not a byte array');
  if (bytes.byteLength === 0) throw new TesseraError(ErrorCode.DecodeFailed, 'message is empty');
  if (bytes.byteLength > budget.maxBytes) {
    throw new TesseraError(ErrorCode.TooLarge, `message of ${bytes.byteLength} bytes, above the budget of ${budget.maxBytes} (maxBytes)`);
  }
  const reader = new Reader(bytes, budget);
  try {
    const value = reader.value(0);
    if (reader.position !== bytes.byteLength)
      throw new Refusal(ErrorCode.DecodeFailed, `${bytes.byteLength - reader.position} bytes after the end of the message`);
    return value;
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    const field = error.path.reverse().join('').replace(/^\./, '');
    throw new TesseraError(error.code, error.message, field ? { field } : {});
  }
}

class Reader {
  position = 0;
  private readonly view: DataView;
  private elementsLeft: number;
  private stringBytesLeft: number;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly budget: DecodeBudget,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.elementsLeft = budget.maxElements;
    this.stringBytesLeft = budget.maxTotalStringBytes;
  }

  /** One value at nesting `depth` (0 for the message itself). */
  value(depth: number): unknown {
    this.spend(1);
    const type = this.u8();
    if (type <= 0x7f) return type;
    if (type >= 0xe0) return type - 0x100;
    if (type <= 0x8f) return this.map(type & 0x0f, depth);
    if (type <= 0x9f) return this.array(type & 0x0f, depth);
    if (type <= 0xbf) return this.string(type & 0x1f);
    switch (type) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.u8());
      case 0xc5:
        return this.bin(this.u16());
      case 0xc6:
        return this.bin(this.u32());
      case 0xca:
        return this.view.getFloat32(this.take(4));
      case 0xcb:
        return this.view.getFloat64(this.take(8));
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        return this.int64(false);
      case 0xd0:
        return this.view.getInt8(this.take(1));
      case 0xd1:
        return this.view.getInt16(this.take(2));
      case 0xd2:
        return this.view.getInt32(this.take(4));
      case 0xd3:
        return this.int64(true);
      case 0xd9:
        return this.string(this.u8());
      case 0xda:
        return this.string(this.u16());
      case 0xdb:
        return this.string(this.u32());
      case 0xdc:
        return this.array(this.u16(), depth);
      case 0xdd:
        return this.array(this.u32(), depth);
      case 0xde:
        return this.map(this.u16(), depth);
      case 0xdf:
        return this.map(this.u32(), depth);
      case 0xc1:
        throw new Refusal(ErrorCode.DecodeFailed, 'the reserved msgpack byte 0xc1');
      default:
        // 0xc7-0xc9 (ext 8/16/32) and 0xd4-0xd8 (fixext): nothing this protocol sends, and what msgpackr would build from them.
        throw new Refusal(ErrorCode.DecodeFailed, `msgpack extension types are not accepted (byte 0x${type.toString(16)})`);
    }
  }

  private array(count: number, depth: number): unknown[] {
    this.enter(depth, count, 1, 'array');
    const out = new Array<unknown>(count);
    for (let i = 0; i < count; i++) {
      try {
        out[i] = this.value(depth + 1);
      } catch (error) {
        if (error instanceof Refusal) error.path.push(`[${i}]`);
        throw error;
      }
    }
    return out;
  }

  private map(count: number, depth: number): Record<string, unknown> {
    this.enter(depth, count, 2, 'map');
    const out: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) {
      const key = this.key();
      if (Object.hasOwn(out, key)) throw new Refusal(ErrorCode.DecodeFailed, `the key ${JSON.stringify(key.slice(0, SHOWN_KEY))} appears twice in one map`);
      try {
        out[key] = this.value(depth + 1);
      } catch (error) {
        if (error instanceof Refusal) error.path.push(`.${key.length > SHOWN_KEY ? `${key.slice(0, SHOWN_KEY)}…` : key}`);
        throw error;
      }
    }
    return out;
  }

  /** A map key: a string, new in its map, and not one that would set the object's prototype. */
  private key(): string {
    this.spend(1);
    const type = this.u8();
    let length: number;
    if (type >= 0xa0 && type <= 0xbf) length = type & 0x1f;
    else if (type === 0xd9) length = this.u8();
    else if (type === 0xda) length = this.u16();
    else if (type === 0xdb) length = this.u32();
    else throw new Refusal(ErrorCode.DecodeFailed, `a map key must be a string (byte 0x${type.toString(16)})`);
    const key = this.string(length);
    if (key === '__proto__') throw new Refusal(ErrorCode.DecodeFailed, 'the map key "__proto__" is not accepted');
    return key;
  }

  /** Checks a container's declared size against depth, elements and remaining bytes before anything is built. */
  private enter(depth: number, count: number, perEntry: number, kind: string): void {
    if (depth + 1 > this.budget.maxDepth) throw new Refusal(ErrorCode.TooLarge, `nesting deeper than the budget of ${this.budget.maxDepth} (maxDepth)`);
    const elements = count * perEntry;
    // Every value takes at least one byte, so a count beyond the remaining bytes is a lie, whatever the budget.
    if (elements > this.bytes.byteLength - this.position) {
      throw new Refusal(ErrorCode.DecodeFailed, `${kind} of ${count} entries declared, only ${this.bytes.byteLength - this.position} bytes remain`);
    }
    if (elements > this.elementsLeft) {
      throw new Refusal(
        ErrorCode.TooLarge,
        `${kind} of ${count} entries, above the ${this.elementsLeft} elements left of the budget of ${this.budget.maxElements} (maxElements)`,
      );
    }
  }

  private string(length: number): string {
    if (length > this.budget.maxStringBytes)
      throw new Refusal(ErrorCode.TooLarge, `string of ${length} bytes, above the budget of ${this.budget.maxStringBytes} (maxStringBytes)`);
    if (length > this.stringBytesLeft) {
      throw new Refusal(
        ErrorCode.TooLarge,
        `string of ${length} bytes, above the ${this.stringBytesLeft} bytes left of the budget of ${this.budget.maxTotalStringBytes} (maxTotalStringBytes)`,
      );
    }
    const start = this.take(length);
    this.stringBytesLeft -= length;
    const bytes = this.bytes;
    // Short ASCII, the common case (keys, types, ids), without TextDecoder's per-call cost.
    if (length <= 32) {
      let text = '';
      for (let i = start; i < start + length; i++) {
        const byte = bytes[i];
        if (byte > 0x7f) return this.utf8(start, length);
        text += String.fromCharCode(byte);
      }
      return text;
    }
    return this.utf8(start, length);
  }

  private utf8(start: number, length: number): string {
    try {
      return utf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      throw new Refusal(ErrorCode.DecodeFailed, 'a string that is not valid UTF-8');
    }
  }

  private bin(length: number): Uint8Array {
    if (length > this.budget.maxBinBytes)
      throw new Refusal(ErrorCode.TooLarge, `byte string of ${length} bytes, above the budget of ${this.budget.maxBinBytes} (maxBinBytes)`);
    const start = this.take(length);
    return this.bytes.subarray(start, start + length);
  }

  private int64(signed: boolean): number {
    const at = this.take(8);
    const high = signed ? this.view.getInt32(at) : this.view.getUint32(at);
    const value = high * 2 ** 32 + this.view.getUint32(at + 4);
    // Rounding is monotonic, so a true value beyond 2^53 never lands inside the safe range.
    if (!Number.isSafeInteger(value)) throw new Refusal(ErrorCode.DecodeFailed, 'a 64-bit integer outside the safe integer range (it would need a BigInt)');
    return value;
  }

  private spend(elements: number): void {
    this.elementsLeft -= elements;
    if (this.elementsLeft < 0) throw new Refusal(ErrorCode.TooLarge, `more than the budget of ${this.budget.maxElements} elements (maxElements)`);
  }

  /** Claims `length` bytes and returns where they start; a declared length past the end is refused before it is read. */
  private take(length: number): number {
    const start = this.position;
    if (length > this.bytes.byteLength - start) {
      throw new Refusal(ErrorCode.DecodeFailed, `${length} bytes declared, only ${this.bytes.byteLength - start} remain (truncated)`);
    }
    this.position = start + length;
    return start;
  }

  private u8(): number {
    return this.bytes[this.take(1)];
  }

  private u16(): number {
    return this.view.getUint16(this.take(2));
  }

  private u32(): number {
    return this.view.getUint32(this.take(4));
  }
}
