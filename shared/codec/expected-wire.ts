import type { DataCodec } from './tensor-wire.ts';
import type { DecodeBudget } from './untrusted.ts';
import type { NamedArrays } from './types.ts';

/**
 * A reader for the one message a receiver expects most: the wire form of
 * float32 tensors of the job's shapes, as wireCodec's encode writes it (a
 * map of codec and tensors, each tensor a map of name, dtype, shape and
 * data, keys in any order). It walks the bytes once and decodes each
 * tensor's data where it goes, building none of decodeUntrusted's object
 * tree: with hundreds of workers, that tree (an object, a shape array and a
 * byte view per tensor, and their collection) took most of the time of an
 * update's check.
 *
 * It only says yes: anything else than that exact form (another order of
 * tensors is fine; a float-encoded dimension, a missing tensor, trailing
 * bytes, a codec's refusal of the data) makes it answer undefined, and the
 * caller decodes the general way, which refuses with the usual error. So a
 * message it accepts is one the general way accepts, with the same values.
 */

/** The expected tensors, in the order of the shapes given, with their names' UTF-8 bytes. */
export interface ExpectedWire {
  codec: Uint8Array;
  names: string[];
  nameBytes: Uint8Array[];
  shapes: number[][];
  counts: number[];
  /** False when the general decoder's budget would refuse a message of this form: the general way then says so. */
  readable: boolean;
}

const utf8 = new TextEncoder();
const ascii = (text: string) => utf8.encode(text);
const KEY_CODEC = ascii('codec');
const KEY_TENSORS = ascii('tensors');
const KEY_NAME = ascii('name');
const KEY_DTYPE = ascii('dtype');
const KEY_SHAPE = ascii('shape');
const KEY_DATA = ascii('data');
const FLOAT32 = ascii('float32');

/** The expected form of `shapes`' tensors in codec `id`, within `budget` (the general decoder's). */
export function expectedWire(id: string, shapes: Readonly<Record<string, readonly number[]>>, budget: DecodeBudget): ExpectedWire {
  const names = Object.keys(shapes);
  const nameBytes = names.map((name) => utf8.encode(name));
  const dims = names.map((name) => [...shapes[name]]);
  const codec = utf8.encode(id);
  // What decodeUntrusted spends on this form: a value or key is one element, a string's bytes count once.
  let elements = 5;
  let stringBytes = KEY_CODEC.length + KEY_TENSORS.length + codec.length;
  for (let i = 0; i < names.length; i++) {
    elements += 9 + dims[i].length;
    stringBytes += KEY_NAME.length + KEY_DTYPE.length + KEY_SHAPE.length + KEY_DATA.length + FLOAT32.length + nameBytes[i].length;
  }
  const longest = Math.max(codec.length, ...nameBytes.map((bytes) => bytes.length));
  // Twice the elements: the general decoder also checks a container's declared entries against what is left.
  const readable = 2 * elements <= budget.maxElements && stringBytes <= budget.maxTotalStringBytes && longest <= budget.maxStringBytes && budget.maxDepth >= 4;
  return { codec, names, nameBytes, shapes: dims, counts: dims.map((shape) => shape.reduce((a, b) => a * b, 1)), readable };
}

/** Why a read stopped: the message is not of the expected form (the caller decodes it the general way). */
const NOT_EXPECTED = -1;

/**
 * The tensors of `bytes` when they are exactly `expected`'s, decoded by
 * `data` (into `into`'s array of a tensor's name when it has one of the
 * tensor's length, else into one fresh buffer for all), in `expected`'s
 * order; undefined otherwise.
 */
export function readExpected(bytes: Uint8Array, expected: ExpectedWire, data: DataCodec, into?: NamedArrays): NamedArrays | undefined {
  if (!expected.readable) return undefined;
  const n = expected.names.length;
  const found = new Array<Uint8Array | undefined>(n);
  // The envelope: two keys, in either order.
  let at = mapOf(bytes, 0, 2);
  if (at < 0) return undefined;
  let sawCodec = false;
  let sawTensors = false;
  for (let k = 0; k < 2; k++) {
    const key = stringAt(bytes, at);
    if (key < 0) return undefined;
    const keyStart = stringStart(bytes, at);
    at = key;
    if (!sawCodec && equalAt(bytes, keyStart, at, KEY_CODEC)) {
      sawCodec = true;
      const end = stringAt(bytes, at);
      if (end < 0 || !equalAt(bytes, stringStart(bytes, at), end, expected.codec)) return undefined;
      at = end;
    } else if (!sawTensors && equalAt(bytes, keyStart, at, KEY_TENSORS)) {
      sawTensors = true;
      at = readTensors(bytes, at, expected, found);
      if (at < 0) return undefined;
    } else return undefined;
  }
  if (at !== bytes.length) return undefined;
  return decodeAll(expected, found as Uint8Array[], data, into);
}

/** Reads the tensor list at `at` into `found` (each expected tensor's data bytes, by index); the position after it. */
function readTensors(bytes: Uint8Array, start: number, expected: ExpectedWire, found: (Uint8Array | undefined)[]): number {
  const n = expected.names.length;
  // One tensor's dimensions at a time.
  const dims: number[] = [];
  let at = start;
  const type = bytes[at++];
  let count: number;
  if (type >= 0x90 && type <= 0x9f) count = type & 0x0f;
  else if (type === 0xdc && at + 2 <= bytes.length) {
    count = (bytes[at] << 8) | bytes[at + 1];
    at += 2;
  } else if (type === 0xdd && at + 4 <= bytes.length) {
    count = ((bytes[at] << 24) >>> 0) + ((bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]);
    at += 4;
  } else return NOT_EXPECTED;
  if (count !== n) return NOT_EXPECTED;
  for (let t = 0; t < n; t++) {
    at = mapOf(bytes, at, 4);
    if (at < 0) return NOT_EXPECTED;
    let index = -1;
    let seen = 0;
    let payload: Uint8Array | undefined;
    for (let k = 0; k < 4; k++) {
      const keyEnd = stringAt(bytes, at);
      if (keyEnd < 0) return NOT_EXPECTED;
      const keyStart = stringStart(bytes, at);
      at = keyEnd;
      if (!(seen & 1) && equalAt(bytes, keyStart, at, KEY_NAME)) {
        seen |= 1;
        const end = stringAt(bytes, at);
        if (end < 0) return NOT_EXPECTED;
        index = nameIndex(bytes, stringStart(bytes, at), end, expected, t);
        if (index < 0 || found[index] !== undefined) return NOT_EXPECTED;
        at = end;
      } else if (!(seen & 2) && equalAt(bytes, keyStart, at, KEY_DTYPE)) {
        seen |= 2;
        const end = stringAt(bytes, at);
        if (end < 0 || !equalAt(bytes, stringStart(bytes, at), end, FLOAT32)) return NOT_EXPECTED;
        at = end;
      } else if (!(seen & 4) && equalAt(bytes, keyStart, at, KEY_SHAPE)) {
        seen |= 4;
        // Held to the tensor's shape once the name says which tensor it is.
        at = readShape(bytes, at, dims);
        if (at < 0) return NOT_EXPECTED;
      } else if (!(seen & 8) && equalAt(bytes, keyStart, at, KEY_DATA)) {
        seen |= 8;
        const end = binAt(bytes, at);
        if (end < 0) return NOT_EXPECTED;
        payload = bytes.subarray(binStart(bytes, at), end);
        at = end;
      } else return NOT_EXPECTED;
    }
    if (!sameShape(dims, expected.shapes[index])) return NOT_EXPECTED;
    found[index] = payload;
  }
  return at;
}

/** Decodes every tensor's data; undefined when the data codec refuses one (the general way then names it). */
function decodeAll(expected: ExpectedWire, found: Uint8Array[], data: DataCodec, into?: NamedArrays): NamedArrays | undefined {
  const { names, counts } = expected;
  let fresh = 0;
  for (let i = 0; i < names.length; i++) if (!intoHas(into, names[i], counts[i])) fresh += counts[i];
  const buffer = fresh > 0 ? new ArrayBuffer(4 * fresh) : undefined;
  let offset = 0;
  const arrays: NamedArrays = {};
  try {
    for (let i = 0; i < names.length; i++) {
      let out: Float32Array;
      if (intoHas(into, names[i], counts[i])) out = into![names[i]];
      else {
        out = new Float32Array(buffer!, offset, counts[i]);
        offset += 4 * counts[i];
      }
      arrays[names[i]] = data.decode(found[i], 'float32', counts[i], '', out) as Float32Array;
    }
  } catch {
    return undefined;
  }
  return arrays;
}

function intoHas(into: NamedArrays | undefined, name: string, count: number): boolean {
  return into !== undefined && Object.hasOwn(into, name) && into[name].length === count;
}

/** The expected tensor whose name the bytes [start, end) are: `guess` first (tensors come in order), else by search. */
function nameIndex(bytes: Uint8Array, start: number, end: number, expected: ExpectedWire, guess: number): number {
  if (guess < expected.nameBytes.length && equalAt(bytes, start, end, expected.nameBytes[guess])) return guess;
  for (let i = 0; i < expected.nameBytes.length; i++) if (equalAt(bytes, start, end, expected.nameBytes[i])) return i;
  return NOT_EXPECTED;
}

function equalAt(bytes: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[start + i] !== expected[i]) return false;
  return true;
}

/** Where the msgpack string at `at` starts its bytes (its header read). */
function stringStart(bytes: Uint8Array, at: number): number {
  const type = bytes[at];
  if (type >= 0xa0 && type <= 0xbf) return at + 1;
  return type === 0xd9 ? at + 2 : type === 0xda ? at + 3 : at + 5;
}

/** The position after the msgpack string at `at`, or NOT_EXPECTED when there is none whole there. */
function stringAt(bytes: Uint8Array, at: number): number {
  const type = bytes[at];
  let length: number;
  if (type >= 0xa0 && type <= 0xbf) length = type & 0x1f;
  else if (type === 0xd9 && at + 2 <= bytes.length) length = bytes[at + 1];
  else if (type === 0xda && at + 3 <= bytes.length) length = (bytes[at + 1] << 8) | bytes[at + 2];
  else if (type === 0xdb && at + 5 <= bytes.length) length = u32(bytes, at + 1);
  else return NOT_EXPECTED;
  const end = stringStart(bytes, at) + length;
  return end <= bytes.length ? end : NOT_EXPECTED;
}

function binStart(bytes: Uint8Array, at: number): number {
  const type = bytes[at];
  return type === 0xc4 ? at + 2 : type === 0xc5 ? at + 3 : at + 5;
}

/** The position after the msgpack byte string at `at`, or NOT_EXPECTED. */
function binAt(bytes: Uint8Array, at: number): number {
  const type = bytes[at];
  let length: number;
  if (type === 0xc4 && at + 2 <= bytes.length) length = bytes[at + 1];
  else if (type === 0xc5 && at + 3 <= bytes.length) length = (bytes[at + 1] << 8) | bytes[at + 2];
  else if (type === 0xc6 && at + 5 <= bytes.length) length = u32(bytes, at + 1);
  else return NOT_EXPECTED;
  const end = binStart(bytes, at) + length;
  return end <= bytes.length ? end : NOT_EXPECTED;
}

/** The position after a msgpack map header at `at` declaring `count` entries (any of its three forms), or NOT_EXPECTED. */
function mapOf(bytes: Uint8Array, at: number, count: number): number {
  const type = bytes[at];
  if (type === (0x80 | count)) return at + 1;
  if (type === 0xde && at + 3 <= bytes.length) return ((bytes[at + 1] << 8) | bytes[at + 2]) === count ? at + 3 : NOT_EXPECTED;
  if (type === 0xdf && at + 5 <= bytes.length) return u32(bytes, at + 1) === count ? at + 5 : NOT_EXPECTED;
  return NOT_EXPECTED;
}

function u32(bytes: Uint8Array, at: number): number {
  return bytes[at] * 0x1000000 + ((bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]);
}

/** Reads the array of small non-negative integers at `at` into `dims` (cleared first); the position after it, or NOT_EXPECTED. */
function readShape(bytes: Uint8Array, at: number, dims: number[]): number {
  dims.length = 0;
  const type = bytes[at++];
  if (type < 0x90 || type > 0x9f) return NOT_EXPECTED;
  const rank = type & 0x0f;
  for (let i = 0; i < rank; i++) {
    const head = bytes[at++];
    if (head <= 0x7f) dims.push(head);
    else if (head === 0xcc && at + 1 <= bytes.length) dims.push(bytes[at++]);
    else if (head === 0xcd && at + 2 <= bytes.length) {
      dims.push((bytes[at] << 8) | bytes[at + 1]);
      at += 2;
    } else if (head === 0xce && at + 4 <= bytes.length) {
      dims.push(u32(bytes, at));
      at += 4;
    } else return NOT_EXPECTED;
  }
  return at <= bytes.length ? at : NOT_EXPECTED;
}

function sameShape(dims: readonly number[], shape: readonly number[]): boolean {
  if (dims.length !== shape.length) return false;
  for (let i = 0; i < shape.length; i++) if (dims[i] !== shape[i]) return false;
  return true;
}
