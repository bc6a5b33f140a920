import { ErrorCode, TesseraError, describe, invalid } from '../protocol/errors.ts';
import type { BoundGrowth, DType, HostTensor, NamedArrays, NamedTensors, TensorCodec, TensorData } from './types.ts';
import { alignedCopy, bytesOf, pack, type TypedArrayClass } from './packr.ts';
import { decodeUntrusted, type DecodeBudget } from './untrusted.ts';
import { expectedWire, readExpected, type ExpectedWire } from './expected-wire.ts';
import { tensorsToArrays } from './named.ts';

/**
 * The wire form of named tensors: a list, because msgpack maps lose nothing
 * but a list keeps order explicit and lets errors point at `tensors[i]`.
 * Multi-byte elements are little-endian.
 */
export interface WireTensors {
  codec: string;
  tensors: WireTensor[];
}

/** One tensor on the wire; `data` layout is up to the codec. */
export interface WireTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** How a codec turns one tensor's elements into bytes and back. */
export interface DataCodec {
  encode(tensor: HostTensor): Uint8Array;
  /**
   * `count` is the element count the shape promises; `field` names `data` in errors. A float32 tensor is written
   * into `out` when given (`count` elements, the caller's), else into a fresh array.
   */
  decode(bytes: Uint8Array, dtype: DType, count: number, field: string, out?: Float32Array): TensorData;
  /** The most bytes encode() writes for `count` elements of `dtype`: what the door lets through. */
  maxBytes(dtype: DType, count: number): number;
}

// Lossless data is the host's typed-array bytes as they are, so the wire's
// little-endian promise only holds on little-endian hosts (all Node and browser targets).
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('tessera codecs need a little-endian host');
}

const ARRAY_CLASS: Record<DType, TypedArrayClass<TensorData>> = {
  float32: Float32Array,
  int32: Int32Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  float16: Uint16Array,
  float64: Float64Array,
};

/** Every dtype a tensor on the wire may have. */
export const DTYPES: readonly DType[] = Object.keys(ARRAY_CLASS) as DType[];

/** Bytes per element of each dtype in its host (and lossless wire) form. */
export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  int32: 4,
  uint8: 1,
  bool: 1,
  float16: 2,
  float64: 8,
};

/** Dimensions above this are refused: keeps element counts exact and matches what frameworks accept. */
export const MAX_DIM = 2 ** 31 - 1;
/** Ranks above this are refused; no model needs more and it bounds the work per shape. */
export const MAX_RANK = 32;

const ENVELOPE_KEYS = new Set(['codec', 'tensors']);
const TENSOR_KEYS = new Set(['name', 'dtype', 'shape', 'data']);

/** True for a dtype this protocol knows. */
export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(ARRAY_CLASS, value);
}

/** The typed-array class that holds a dtype on the host. */
export function arrayClassOf(dtype: DType): TypedArrayClass<TensorData> {
  return ARRAY_CLASS[dtype];
}

/** Number of elements of a shape that checkShape accepted (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

/** Copies shape and refuses anything but a short list of integer dims in [0, MAX_DIM]. */
export function checkShape(value: unknown, field: string): number[] {
  if (!Array.isArray(value)) invalid(field, 'an array of dimensions', value);
  if (value.length > MAX_RANK) invalid(field, `at most ${MAX_RANK} dimensions`, value);
  const shape = new Array<number>(value.length);
  for (let i = 0; i < value.length; i++) {
    const dim: unknown = value[i];
    if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 0 || dim > MAX_DIM) {
      invalid(field, `an integer in [0, ${MAX_DIM}] at index ${i}`, dim);
    }
    shape[i] = dim;
  }
  // Each dim fits in 31 bits, yet the product may not: beyond 2^53 it is not exact.
  if (!Number.isSafeInteger(elementCount(shape))) invalid(field, 'a shape with fewer than 2^53 elements', value);
  return shape;
}

/** Refuses names that cannot be keys of a plain NamedTensors object. */
export function checkName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) invalid(field, 'a non-empty string', value);
  // As a plain-object key it would set the prototype instead of adding a tensor.
  if (value === '__proto__') invalid(field, 'a name other than "__proto__"', value);
  return value;
}

/** Refuses dtypes the protocol does not know. */
export function checkDType(value: unknown, field: string): DType {
  if (!isDType(value)) invalid(field, `one of ${DTYPES.join(', ')}`, value);
  return value;
}

/** Refuses bool data holding anything but 0 and 1, which would compare unequal to `true`. */
export function checkBool(data: Uint8Array, field: string): void {
  for (let i = 0; i < data.length; i++) {
    if (data[i] > 1) invalid(field, `bool bytes of 0 or 1 at index ${i}`, data[i]);
  }
}

/** Throws TensorMismatch unless `actual` bytes arrived where the shape promises `expected`. */
export function checkByteLength(actual: number, expected: number, field: string): void {
  if (actual !== expected) {
    throw new TesseraError(ErrorCode.TensorMismatch, `expected ${expected} bytes for the shape, got ${actual}`, { field });
  }
}

/** The f32 layout: elements as the host typed array holds them, copied into aligned memory on decode. */
export const losslessData: DataCodec = {
  encode: (tensor) => bytesOf(tensor.data),
  maxBytes: (dtype, count) => count * BYTES_PER_ELEMENT[dtype],
  decode(bytes, dtype, count, field, out) {
    checkByteLength(bytes.byteLength, count * BYTES_PER_ELEMENT[dtype], field);
    if (out && dtype === 'float32') {
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
      return out;
    }
    const data = alignedCopy(bytes, ARRAY_CLASS[dtype]);
    if (dtype === 'bool') checkBool(data as Uint8Array, field);
    return data;
  },
};

/** Checks one host tensor before encoding, so a local bug never reaches the wire. */
export function checkHostTensor(tensor: unknown, field: string): HostTensor {
  if (!isObject(tensor)) invalid(field, 'a tensor object', tensor);
  const dtype = checkDType(tensor.dtype, `${field}.dtype`);
  const shape = checkShape(tensor.shape, `${field}.shape`);
  const data = tensor.data;
  const ctor = ARRAY_CLASS[dtype];
  // Exact class: a Uint8ClampedArray or DataView would be sent with the wrong meaning.
  if (!(data instanceof ctor) || (ctor !== Uint8Array && data.constructor !== ctor)) {
    invalid(`${field}.data`, `a ${ctor.name} for dtype ${dtype}`, data, ErrorCode.TensorMismatch);
  }
  if (data.length !== elementCount(shape)) {
    invalid(`${field}.data`, `${elementCount(shape)} elements for shape [${shape.join(', ')}]`, data.length, ErrorCode.TensorMismatch);
  }
  if (dtype === 'bool') checkBool(data as Uint8Array, `${field}.data`);
  return { dtype, shape, data };
}

/** Builds the wire form of named tensors (checked first), with element bytes from `dataCodec`. */
export function toWire(codec: string, tensors: NamedTensors, dataCodec: DataCodec = losslessData): WireTensors {
  if (!isObject(tensors) || Array.isArray(tensors)) invalid('tensors', 'an object of named tensors', tensors);
  const names = Object.keys(tensors);
  const wire = new Array<WireTensor>(names.length);
  for (let i = 0; i < names.length; i++) {
    const field = `tensors[${i}]`;
    const name = checkName(names[i], `${field}.name`);
    const tensor = checkHostTensor(tensors[name], field);
    wire[i] = { name, dtype: tensor.dtype, shape: tensor.shape, data: dataCodec.encode(tensor) };
  }
  return { codec, tensors: wire };
}

/**
 * Checks an untrusted decoded value field by field and returns fresh, aligned
 * tensors that share no memory with the message. A float32 tensor named in
 * `into` with the element count its shape promises is written there instead
 * of into a fresh array (see TensorCodec.decode).
 */
export function fromWire(value: unknown, codec: string, dataCodec: DataCodec = losslessData, into?: NamedArrays): NamedTensors {
  if (!isPlainObject(value)) {
    throw new TesseraError(ErrorCode.InvalidMessage, `expected an object with codec and tensors, got ${describe(value)}`);
  }
  checkKeys(value, ENVELOPE_KEYS, '');
  if (value.codec !== codec) invalid('codec', JSON.stringify(codec), value.codec);
  const list = value.tensors;
  if (!Array.isArray(list)) invalid('tensors', 'an array', list);
  const out: NamedTensors = {};
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const field = `tensors[${i}]`;
    const entry: unknown = list[i];
    if (!isPlainObject(entry)) invalid(field, 'a tensor object', entry);
    checkKeys(entry, TENSOR_KEYS, field);
    const name = checkName(entry.name, `${field}.name`);
    if (seen.has(name)) invalid(`${field}.name`, 'a name not used by an earlier tensor', name);
    seen.add(name);
    const dtype = checkDType(entry.dtype, `${field}.dtype`);
    const shape = checkShape(entry.shape, `${field}.shape`);
    if (!(entry.data instanceof Uint8Array)) invalid(`${field}.data`, 'a byte string', entry.data);
    const count = elementCount(shape);
    const target = into && dtype === 'float32' && Object.hasOwn(into, name) && into[name].length === count ? into[name] : undefined;
    const data = dataCodec.decode(entry.data, dtype, count, `${field}.data`, target);
    out[name] = { dtype, shape, data };
  }
  return out;
}

/**
 * What the wire form of many tensors may make the decoder build: the bytes
 * themselves are bounded by whoever hands them over (the door's frame limit,
 * a checkpoint's file size), so this bounds only what bytes cannot: objects.
 * A tensor entry is ~10 values plus its rank, so 65,536 elements allow some
 * 2,000 tensors (the largest model here has a few hundred).
 */
export const TENSOR_DECODE_BUDGET: DecodeBudget = {
  maxBytes: Number.MAX_SAFE_INTEGER,
  maxElements: 65_536,
  // Envelope, tensor list, tensor, shape.
  maxDepth: 4,
  maxStringBytes: 1024,
  maxTotalStringBytes: 1024 * 1024,
  maxBinBytes: Number.MAX_SAFE_INTEGER,
};

/** msgpack bytes of the envelope beside its tensors: the map, `codec` and its id, `tensors` and the list header. */
const ENVELOPE_BYTES = 64;
/** msgpack bytes of one tensor beside its name, shape dims and data: map, keys, dtype, headers. */
const TENSOR_OVERHEAD_BYTES = 48;

/** The most bytes a wire codec writes for float32 tensors of these shapes (names up to 3 UTF-8 bytes per UTF-16 unit). */
function maxWireBytes(id: string, shapes: Readonly<Record<string, readonly number[]>>, dataCodec: DataCodec): number {
  let total = ENVELOPE_BYTES + 3 * id.length;
  for (const [name, shape] of Object.entries(shapes)) {
    // A dim takes at most 9 bytes (a float64 or uint64) in msgpack.
    total += TENSOR_OVERHEAD_BYTES + 3 * name.length + 9 * shape.length + dataCodec.maxBytes('float32', elementCount(shape));
  }
  return total;
}

/** A TensorCodec whose messages are the packed wire form with `dataCodec`'s element layout. */
export function wireCodec(
  id: string,
  lossless: boolean,
  dataCodec: DataCodec,
  errorBound?: (original: Float32Array) => Float32Array,
  boundGrowth?: BoundGrowth,
): TensorCodec {
  const decode = (bytes: Uint8Array, into?: NamedArrays) => fromWire(decodeUntrusted(bytes, TENSOR_DECODE_BUDGET), id, dataCodec, into);
  // The expected form of each set of shapes a receiver decodes (a job's, usually one object for its life).
  const expected = new WeakMap<object, ExpectedWire>();
  const codec: TensorCodec = {
    id,
    lossless,
    encode: (tensors) => pack(toWire(id, tensors, dataCodec)),
    decode,
    decodeArrays(bytes, shapes, field, into) {
      let form = expected.get(shapes);
      if (!form) expected.set(shapes, (form = expectedWire(id, shapes, TENSOR_DECODE_BUDGET)));
      return readExpected(bytes, form, dataCodec, into) ?? tensorsToArrays(decode(bytes, into), shapes, field);
    },
    maxEncodedBytes: (shapes) => maxWireBytes(id, shapes, dataCodec),
  };
  if (errorBound) codec.errorBound = errorBound;
  return Object.freeze(boundGrowth ? { ...codec, boundGrowth: Object.freeze({ ...boundGrowth }) } : codec);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Decoded maps must be plain objects: msgpack extensions can also yield Map, Set, Date or Error. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkKeys(value: Record<string, unknown>, allowed: Set<string>, field: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      const shown = key.length > 40 ? `${key.slice(0, 40)}…` : key;
      throw new TesseraError(ErrorCode.InvalidMessage, `unexpected field ${describe(shown)}`, {
        field: field ? `${field}.${shown}` : shown,
      });
    }
  }
}
