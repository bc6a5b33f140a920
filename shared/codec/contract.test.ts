import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { DTYPES, arrayClassOf, listCodecs, pack, type DType, type NamedTensors, type TensorCodec } from './index.ts';
import { cloneTensors, firstByteDifference, mulberry32, randomBytes, randomTensor } from './test-utils.ts';

/** Codes a decoder may answer bad bytes with; anything else (or a non-TesseraError) is a bug. */
const DOOR_CODES = new Set<string>([ErrorCode.DecodeFailed, ErrorCode.InvalidMessage, ErrorCode.TensorMismatch, ErrorCode.TooLarge]);

const SHAPES: number[][] = [[], [0], [1], [3], [0, 5], [5, 0, 2], [7, 13], [255], [256], [257], [3, 129], [2, 3, 4, 5], [1, 1, 1, 1], [1000, 1001]];

/** Decodes and says how it went, never throwing: 'ok', a door code, or what escaped. */
function attempt(codec: TensorCodec, bytes: Uint8Array): string {
  try {
    const tensors = codec.decode(bytes);
    for (const t of Object.values(tensors)) {
      if (!(t.data instanceof arrayClassOf(t.dtype))) return `BAD RESULT: ${t.dtype} in ${t.data.constructor.name}`;
    }
    return 'ok';
  } catch (error) {
    if (error instanceof TesseraError && DOOR_CODES.has(error.code)) return error.code;
    return `ESCAPED: ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`;
  }
}

function expectDoorError(fn: () => unknown, code?: ErrorCode, field?: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(TesseraError);
  const error = caught as TesseraError;
  expect(DOOR_CODES.has(error.code), `code ${error.code}`).toBe(true);
  if (code) expect(error.code).toBe(code);
  if (field !== undefined) expect(error.field).toBe(field);
}

/** Checks decoded against original: bit-exact where the codec is lossless for it, else within errorBound. */
function expectRoundTrip(codec: TensorCodec, original: NamedTensors, decoded: NamedTensors): void {
  expect(Object.keys(decoded)).toEqual(Object.keys(original));
  for (const [name, want] of Object.entries(original)) {
    const got = decoded[name];
    expect(got.dtype, name).toBe(want.dtype);
    expect(got.shape, name).toEqual(want.shape);
    expect(got.data.constructor, name).toBe(arrayClassOf(want.dtype));
    expect(got.data.length, name).toBe(want.data.length);
    if (codec.lossless || want.dtype !== 'float32') {
      expect(firstByteDifference(got.data, want.data), `${name}: first differing byte`).toBe(-1);
      continue;
    }
    const bound = codec.errorBound!(want.data as Float32Array);
    const x = want.data as Float32Array;
    const y = got.data as Float32Array;
    for (let i = 0; i < x.length; i++) {
      if (!(Math.abs(y[i] - x[i]) <= bound[i])) {
        expect.fail(`${name}[${i}]: ${x[i]} decoded as ${y[i]}, bound ${bound[i]}`);
      }
    }
  }
}

/** A small valid message as the wire object, for targeted corruption. */
function wireObject(codec: TensorCodec): Record<string, unknown> {
  return {
    codec: codec.id,
    tensors: [
      { name: 'a', dtype: 'int32', shape: [2], data: new Uint8Array(8) },
      { name: 'b', dtype: 'bool', shape: [3], data: new Uint8Array([0, 1, 0]) },
    ],
  };
}

const codecs = listCodecs();

describe('codec registry contents', () => {
  it('registers f32, f16 and int8', () => {
    expect(codecs.map((c) => c.id)).toEqual(['f32', 'f16', 'int8']);
  });
});

describe.each(codecs.map((codec) => [codec.id, codec] as const))('codec %s', (_id, codec) => {
  it('documents an error bound if and only if lossy', () => {
    expect(typeof codec.errorBound === 'function').toBe(!codec.lossless);
  });

  it.each(DTYPES.map((d) => [d]))('round-trips random %s tensors of every shape', (dtype: DType) => {
    const rand = mulberry32(0xc0dec + DTYPES.indexOf(dtype));
    const original: NamedTensors = {};
    SHAPES.forEach((shape, i) => (original[`layer${i}/${dtype}`] = randomTensor(dtype, shape, rand)));
    expectRoundTrip(codec, original, codec.decode(codec.encode(original)));
  });

  it('round-trips a message mixing dtypes and keeps names and their order', () => {
    const rand = mulberry32(7);
    const names = ['gen/dense/kernel', 'b', 'constructor', 'toString', 'ü/λ/∑', 'x'.repeat(300), 'disc/conv2/bias', ' '];
    const original: NamedTensors = {};
    names.forEach((name, i) => (original[name] = randomTensor(DTYPES[i % DTYPES.length], [i + 1, 3], rand)));
    const decoded = codec.decode(codec.encode(original));
    expect(Object.keys(decoded)).toEqual(names);
    expectRoundTrip(codec, original, decoded);
  });

  it('writes no more bytes than maxEncodedBytes promises for float32 tensors of those shapes', () => {
    const rand = mulberry32(5);
    const shapes: Record<string, number[]> = { s: [], ['x'.repeat(300)]: [3], 'ü/λ/∑😀': [2, 2 ** 20 + 1, 0], big: [1000, 1001], g_w: [3, 129], d_b: [257] };
    const tensors: NamedTensors = {};
    for (const [name, shape] of Object.entries(shapes)) tensors[name] = randomTensor('float32', shape, rand);
    const bound = codec.maxEncodedBytes(shapes);
    const written = codec.encode(tensors).byteLength;
    expect(written).toBeLessThanOrEqual(bound);
    // A bound, not a guess: within 1% + 1 kB of what is written.
    expect(bound).toBeLessThan(written * 1.01 + 1024);
    expect(codec.maxEncodedBytes({})).toBeGreaterThanOrEqual(codec.encode({}).byteLength);
  });

  it('round-trips an empty set of tensors', () => {
    expect(codec.decode(codec.encode({}))).toEqual({});
  });

  it('keeps special float32 values: exact bits if lossless, non-finite stays non-finite if lossy', () => {
    const bits = new Uint32Array([
      0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff, 0x3f800000,
      0x38800000, 0x33800000,
    ]);
    const data = new Float32Array(bits.buffer);
    const decoded = codec.decode(codec.encode({ s: { dtype: 'float32', shape: [data.length], data } })).s.data as Float32Array;
    if (codec.lossless) {
      expect(firstByteDifference(decoded, data)).toBe(-1);
    } else {
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) expect(Number.isFinite(decoded[i]), `element ${i}`).toBe(false);
      }
    }
  });

  it('decodes from an unaligned view into fresh, aligned, independent arrays', () => {
    const rand = mulberry32(11);
    const original: NamedTensors = {};
    for (const dtype of DTYPES) original[dtype] = randomTensor(dtype, [37], rand);
    const expected = cloneTensors(original);
    const encoded = codec.encode(original);
    // Mutating the input after encoding must not reach the message.
    for (const t of Object.values(original)) t.data.fill(1);
    // Place the message at an odd offset, where no multi-byte typed array could start.
    const host = new Uint8Array(encoded.length + 3);
    host.set(encoded, 1);
    const message = host.subarray(1, 1 + encoded.length);
    const decoded = codec.decode(message);
    expectRoundTrip(codec, expected, decoded);
    const buffers = new Set<ArrayBufferLike>();
    for (const t of Object.values(decoded)) {
      expect(t.data.byteOffset % t.data.BYTES_PER_ELEMENT).toBe(0);
      expect(t.data.buffer).not.toBe(host.buffer);
      buffers.add(t.data.buffer);
    }
    expect(buffers.size).toBe(DTYPES.length);
    // Scribbling over the message afterwards must not reach the decoded tensors.
    host.fill(0xff);
    expectRoundTrip(codec, expected, decoded);
  });

  it('decodes float32 tensors into the arrays it is given, where name and length match, and the rest into fresh ones', () => {
    const rand = mulberry32(12);
    const original: NamedTensors = {
      a: randomTensor('float32', [2, 5], rand),
      b: randomTensor('float32', [7], rand),
      c: randomTensor('int32', [3], rand),
      constructor: randomTensor('float32', [1], rand),
    };
    const plain = codec.decode(codec.encode(original));
    // b's array has the wrong length, c is not float32, and 'constructor' is no tensor's name (nor a key to take from).
    const into = { a: new Float32Array(10), b: new Float32Array(6), c: new Float32Array(3) };
    const decoded = codec.decode(codec.encode(original), into);
    expect(decoded.a.data).toBe(into.a);
    expect(decoded.b.data).not.toBe(into.b);
    expect(decoded.c.data).not.toBe(into.c);
    expect(decoded['constructor' as string]!.data).toBeInstanceOf(Float32Array);
    expect(into.b.every((value) => value === 0)).toBe(true);
    for (const name of Object.keys(original)) expect(decoded[name]).toEqual(plain[name]);
    // The same arrays again: the next message's values replace the last's.
    const next: NamedTensors = { ...original, a: randomTensor('float32', [2, 5], rand) };
    expect(codec.decode(codec.encode(next), into).a.data).toBe(into.a);
    expect(into.a).toEqual(codec.decode(codec.encode(next)).a.data);
  });

  it('refuses to encode tensors whose data does not match dtype or shape', () => {
    expectDoorError(() => codec.encode({ w: { dtype: 'float32', shape: [4], data: new Float32Array(3) } }), ErrorCode.TensorMismatch, 'tensors[0].data');
    expectDoorError(() => codec.encode({ w: { dtype: 'float32', shape: [2], data: new Float64Array(2) } }), ErrorCode.TensorMismatch, 'tensors[0].data');
    expectDoorError(
      () => codec.encode({ w: { dtype: 'float128' as DType, shape: [1], data: new Float32Array(1) } }),
      ErrorCode.InvalidMessage,
      'tensors[0].dtype',
    );
    expectDoorError(() => codec.encode({ w: { dtype: 'int32', shape: [-1], data: new Int32Array(1) } }), ErrorCode.InvalidMessage, 'tensors[0].shape');
    expectDoorError(() => codec.encode({ '': { dtype: 'uint8', shape: [1], data: new Uint8Array(1) } }), ErrorCode.InvalidMessage, 'tensors[0].name');
    expectDoorError(() => codec.encode({ b: { dtype: 'bool', shape: [1], data: new Uint8Array([2]) } }), ErrorCode.InvalidMessage, 'tensors[0].data');
  });

  it('names the field at fault in a well-formed message with wrong contents', () => {
    const cases: [string, (w: any) => void, ErrorCode, string][] = [
      ['codec of another codec', (w) => (w.codec = codec.id === 'f32' ? 'int8' : 'f32'), ErrorCode.InvalidMessage, 'codec'],
      ['codec missing', (w) => delete w.codec, ErrorCode.InvalidMessage, 'codec'],
      ['tensors not an array', (w) => (w.tensors = { a: 1 }), ErrorCode.InvalidMessage, 'tensors'],
      ['extra top-level field', (w) => (w.extra = 1), ErrorCode.InvalidMessage, 'extra'],
      ['entry not an object', (w) => (w.tensors[1] = [1, 2]), ErrorCode.InvalidMessage, 'tensors[1]'],
      ['entry extra field', (w) => (w.tensors[1].scale = 2), ErrorCode.InvalidMessage, 'tensors[1].scale'],
      ['name missing', (w) => delete w.tensors[1].name, ErrorCode.InvalidMessage, 'tensors[1].name'],
      ['name a number', (w) => (w.tensors[1].name = 5), ErrorCode.InvalidMessage, 'tensors[1].name'],
      ['name empty', (w) => (w.tensors[1].name = ''), ErrorCode.InvalidMessage, 'tensors[1].name'],
      ['name __proto__', (w) => (w.tensors[1].name = '__proto__'), ErrorCode.InvalidMessage, 'tensors[1].name'],
      ['name duplicate', (w) => (w.tensors[1].name = 'a'), ErrorCode.InvalidMessage, 'tensors[1].name'],
      ['dtype unknown', (w) => (w.tensors[1].dtype = 'complex64'), ErrorCode.InvalidMessage, 'tensors[1].dtype'],
      ['dtype not a string', (w) => (w.tensors[1].dtype = 4), ErrorCode.InvalidMessage, 'tensors[1].dtype'],
      ['shape not an array', (w) => (w.tensors[1].shape = 3), ErrorCode.InvalidMessage, 'tensors[1].shape'],
      ['shape negative', (w) => (w.tensors[1].shape = [-3]), ErrorCode.InvalidMessage, 'tensors[1].shape'],
      ['shape fractional', (w) => (w.tensors[1].shape = [1.5, 2]), ErrorCode.InvalidMessage, 'tensors[1].shape'],
      ['shape string dim', (w) => (w.tensors[1].shape = ['3']), ErrorCode.InvalidMessage, 'tensors[1].shape'],
      ['shape huge dims', (w) => (w.tensors[1].shape = [2 ** 31, 0]), ErrorCode.InvalidMessage, 'tensors[1].shape'],
      ['shape too many elements', (w) => (w.tensors[1].shape = Array(8).fill(2 ** 31 - 1)), ErrorCode.InvalidMessage, 'tensors[1].shape'],
      ['shape disagrees with data', (w) => (w.tensors[1].shape = [4]), ErrorCode.TensorMismatch, 'tensors[1].data'],
      ['data missing', (w) => delete w.tensors[0].data, ErrorCode.InvalidMessage, 'tensors[0].data'],
      ['data a string', (w) => (w.tensors[0].data = 'abcdefgh'), ErrorCode.InvalidMessage, 'tensors[0].data'],
      ['data an array', (w) => (w.tensors[0].data = [0, 0, 0, 0, 0, 0, 0, 0]), ErrorCode.InvalidMessage, 'tensors[0].data'],
      ['data too short', (w) => (w.tensors[0].data = new Uint8Array(7)), ErrorCode.TensorMismatch, 'tensors[0].data'],
      ['data too long', (w) => (w.tensors[0].data = new Uint8Array(9)), ErrorCode.TensorMismatch, 'tensors[0].data'],
      ['bool byte not 0/1', (w) => (w.tensors[1].data = new Uint8Array([0, 2, 1])), ErrorCode.InvalidMessage, 'tensors[1].data'],
    ];
    expect(codec.decode(pack(wireObject(codec)))).toBeTruthy();
    for (const [label, corrupt, code, field] of cases) {
      const wire = wireObject(codec);
      corrupt(wire);
      try {
        codec.decode(pack(wire));
        expect.fail(`${label}: decoded`);
      } catch (error) {
        expect(error, label).toBeInstanceOf(TesseraError);
        expect([label, (error as TesseraError).code, (error as TesseraError).field]).toEqual([label, code, field]);
      }
    }
  });

  it('refuses non-message values', () => {
    for (const value of [null, 3, 'f32', [1, 2], true, new Uint8Array(4)]) {
      expectDoorError(() => codec.decode(pack(value)), ErrorCode.InvalidMessage);
    }
    expectDoorError(() => codec.decode(new Uint8Array(0)), ErrorCode.DecodeFailed);
    expectDoorError(() => codec.decode('not bytes' as unknown as Uint8Array), ErrorCode.DecodeFailed);
  });

  it('refuses every truncation of a small message', () => {
    const rand = mulberry32(21);
    const original: NamedTensors = {};
    for (const dtype of DTYPES) original[`t/${dtype}`] = randomTensor(dtype, [3], rand);
    const bytes = codec.encode(original);
    for (let cut = 0; cut < bytes.length; cut++) {
      expect([cut, attempt(codec, bytes.subarray(0, cut))]).toEqual([cut, ErrorCode.DecodeFailed]);
    }
    // Trailing garbage is as wrong as a missing tail.
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(attempt(codec, longer)).toBe(ErrorCode.DecodeFailed);
  });

  it('refuses random truncations of a large message', () => {
    const rand = mulberry32(22);
    const original: NamedTensors = {};
    for (const dtype of DTYPES) original[`t/${dtype}`] = randomTensor(dtype, [20_000], rand);
    const bytes = codec.encode(original);
    for (let i = 0; i < 200; i++) {
      const cut = Math.floor(rand() * bytes.length);
      expect([cut, attempt(codec, bytes.subarray(0, cut))]).toEqual([cut, ErrorCode.DecodeFailed]);
    }
  });

  it('answers random byte strings with a door error, never a crash', () => {
    const rand = mulberry32(23);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const length = i < 2500 ? Math.floor(rand() * 64) : Math.floor(rand() * 4096);
      const outcome = attempt(codec, randomBytes(length, rand));
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    expect([...outcomes.keys()].filter((o) => !DOOR_CODES.has(o))).toEqual([]);
  });

  it('answers random bytes after a valid message prefix with a door error', () => {
    // Random tails reach the field checks, which random whole strings rarely do.
    const bytes = pack(wireObject(codec));
    const rand = mulberry32(24);
    for (let i = 0; i < 1000; i++) {
      const keep = Math.floor(rand() * bytes.length);
      const message = new Uint8Array(keep + Math.floor(rand() * 48));
      message.set(bytes.subarray(0, keep));
      message.set(randomBytes(message.length - keep, rand), keep);
      const outcome = attempt(codec, message);
      expect(DOOR_CODES.has(outcome), outcome).toBe(true);
    }
  });

  it('decodes a byte-flipped message either to well-formed tensors or a door error', () => {
    const rand = mulberry32(25);
    const original: NamedTensors = {};
    for (const dtype of DTYPES) original[`t/${dtype}`] = randomTensor(dtype, [2, 3], rand);
    const bytes = codec.encode(original);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const mutated = bytes.slice();
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) mutated[Math.floor(rand() * mutated.length)] = (rand() * 256) | 0;
      const outcome = attempt(codec, mutated);
      seen.add(outcome);
      expect(outcome === 'ok' || DOOR_CODES.has(outcome), outcome).toBe(true);
    }
    // Both outcomes must occur, or the fuzz is not reaching past the envelope.
    expect(seen.has('ok')).toBe(true);
    expect(seen.size).toBeGreaterThan(1);
  });

  it('still decodes a valid message after garbage', () => {
    const rand = mulberry32(26);
    const original = { w: randomTensor('float32', [300], rand) };
    const bytes = codec.encode(original);
    attempt(codec, randomBytes(100, rand));
    attempt(codec, bytes.subarray(0, 50));
    expectRoundTrip(codec, original, codec.decode(bytes));
  });
});
