import { describe, expect, it } from 'vitest';
import { TesseraError } from '../protocol/errors.ts';
import { expectedWire, readExpected } from './expected-wire.ts';
import { f16Data } from './f16.ts';
import { getCodec } from './index.ts';
import { int8Data } from './int8.ts';
import { decodeArrays, tensorsToArrays } from './named.ts';
import { pack } from './packr.ts';
import { losslessData, TENSOR_DECODE_BUDGET } from './tensor-wire.ts';
import { mulberry32, randomFloats } from './test-utils.ts';
import type { NamedArrays, NamedTensors } from './types.ts';

const shapes: Record<string, number[]> = {
  'generator/dense/kernel': [16, 200],
  'generator/dense/bias': [200],
  'generator/conv_transpose_with_a_rather_long_name_past_31_bytes/kernel': [5, 5, 8, 4],
  'discriminator/conv/kernel': [3, 3, 1, 300],
  'discriminator/out/bias': [1],
  scalar: [],
};

function tensorsOf(rand: () => number, order = Object.keys(shapes)): NamedTensors {
  return Object.fromEntries(
    order.map((name) => [
      name,
      {
        dtype: 'float32' as const,
        shape: shapes[name],
        data: randomFloats(
          shapes[name].reduce((a, b) => a * b, 1),
          rand,
        ),
      },
    ]),
  );
}

/** What the general way gives: the arrays, or the error's code, field and message. */
function general(codec: string, bytes: Uint8Array, into?: NamedArrays): NamedArrays | { code: string; field?: string; message: string } {
  try {
    return tensorsToArrays(getCodec(codec).decode(bytes, into), shapes);
  } catch (error) {
    if (!(error instanceof TesseraError)) throw error;
    return { code: error.code, field: error.field, message: error.message };
  }
}

function viaFastPath(codec: string, bytes: Uint8Array, into?: NamedArrays): ReturnType<typeof general> {
  try {
    return decodeArrays(getCodec(codec), bytes, shapes, 'tensors', into);
  } catch (error) {
    if (!(error instanceof TesseraError)) throw error;
    return { code: error.code, field: error.field, message: error.message };
  }
}

/** Plain arrays of numbers, so toEqual compares values and NaN bit patterns alike, and a view is not told from a copy. */
function plain(result: ReturnType<typeof general>): unknown {
  if ('code' in result && typeof result.code === 'string') return result;
  return Object.fromEntries(Object.entries(result as NamedArrays).map(([name, array]) => [name, Array.from(new Uint32Array(array.slice().buffer))]));
}

const expectedF32 = expectedWire('f32', shapes, TENSOR_DECODE_BUDGET);

describe('readExpected: the tensors of a job in the one form encode writes, read without an object tree', () => {
  it.each(['f32', 'f16', 'int8'])('reads what the %s codec encodes, in any tensor order, as the general way does', (id) => {
    const rand = mulberry32(7);
    const codec = getCodec(id);
    const orders = [Object.keys(shapes), Object.keys(shapes).reverse()];
    for (const order of orders) {
      const bytes = codec.encode(tensorsOf(rand, order));
      const data = { f32: losslessData, f16: f16Data, int8: int8Data }[id]!;
      expect(readExpected(bytes, expectedWire(id, shapes, TENSOR_DECODE_BUDGET), data)).toBeDefined();
      const fast = decodeArrays(codec, bytes, shapes);
      expect(plain(fast)).toEqual(plain(general(id, bytes)));
      // In the job's order, whatever order they came in.
      expect(Object.keys(fast)).toEqual(Object.keys(shapes));
    }
  });

  it('takes the keys of the envelope and of each tensor in any order, and strings in longer headers', () => {
    const rand = mulberry32(11);
    const tensors = tensorsOf(rand);
    const wire = Object.entries(tensors).map(([name, t]) => ({
      data: new Uint8Array(t.data.buffer as ArrayBuffer),
      shape: t.shape,
      dtype: 'float32',
      name,
    }));
    const bytes = pack({ tensors: wire, codec: 'f32' }).slice();
    expect(readExpected(bytes, expectedF32, losslessData)).toBeDefined();
    expect(plain(viaFastPath('f32', bytes))).toEqual(plain(general('f32', bytes)));
  });

  it('decodes into the arrays given for a tensor of its length, into one fresh buffer otherwise', () => {
    const rand = mulberry32(3);
    const bytes = getCodec('f32').encode(tensorsOf(rand));
    const into: NamedArrays = { 'generator/dense/bias': new Float32Array(200), 'discriminator/out/bias': new Float32Array(5) };
    const read = readExpected(bytes, expectedF32, losslessData, into)!;
    expect(read['generator/dense/bias']).toBe(into['generator/dense/bias']);
    expect(read['discriminator/out/bias']).not.toBe(into['discriminator/out/bias']);
    expect(read['generator/dense/kernel'].buffer).toBe(read['discriminator/conv/kernel'].buffer);
    expect(plain(read)).toEqual(plain(general('f32', bytes)));
  });

  it('leaves every other message to the general way, which refuses it with the same error', () => {
    const rand = mulberry32(5);
    const base = tensorsOf(rand);
    const wire = (change: (entries: Record<string, unknown>[]) => unknown[], envelope: Record<string, unknown> = {}) =>
      pack({
        codec: 'f32',
        tensors: change(
          Object.entries(base).map(([name, t]) => ({ name, dtype: 'float32', shape: t.shape, data: new Uint8Array(t.data.buffer as ArrayBuffer) })),
        ),
        ...envelope,
      }).slice();
    const cases: Record<string, Uint8Array> = {
      missing: wire((entries) => entries.slice(1)),
      extra: wire((entries) => [...entries, { ...entries[0], name: 'other' }]),
      duplicate: wire((entries) => [entries[0], ...entries.slice(0, -1)]),
      shape: wire((entries) => entries.map((e, i) => (i === 0 ? { ...e, shape: [200, 16] } : e))),
      rank: wire((entries) => entries.map((e, i) => (i === 1 ? { ...e, shape: [1, 200] } : e))),
      floatDim: wire((entries) => entries.map((e, i) => (i === 0 ? { ...e, shape: [16.5, 200] } : e))),
      dtype: wire((entries) => entries.map((e, i) => (i === 0 ? { ...e, dtype: 'int32' } : e))),
      shortData: wire((entries) => entries.map((e, i) => (i === 0 ? { ...e, data: (e.data as Uint8Array).subarray(4) } : e))),
      extraKey: wire((entries) => entries.map((e, i) => (i === 2 ? { ...e, note: 1 } : e))),
      codec: wire((entries) => entries, { codec: 'f16' }),
      envelopeKey: wire((entries) => entries, { round: 3 }),
      trailing: new Uint8Array([...getCodec('f32').encode(base), 0xc0]),
      empty: new Uint8Array(0),
    };
    for (const [label, bytes] of Object.entries(cases)) {
      expect(readExpected(bytes, expectedF32, losslessData), label).toBeUndefined();
      const refused = viaFastPath('f32', bytes);
      expect(refused, label).toHaveProperty('code');
      expect(refused, label).toEqual(general('f32', bytes));
    }
  });

  it('agrees with the general way on a thousand seeded corruptions of a valid message (flips, cuts, insertions)', () => {
    const rand = mulberry32(2026);
    const valid = getCodec('f32').encode(tensorsOf(rand)).slice();
    for (let trial = 0; trial < 1000; trial++) {
      let bytes = valid.slice();
      const kind = trial % 3;
      const at = Math.floor(rand() * bytes.length);
      if (kind === 0) for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      else if (kind === 1) bytes = bytes.subarray(0, at);
      else bytes = new Uint8Array([...bytes.subarray(0, at), Math.floor(rand() * 256), ...bytes.subarray(at)]);
      // Flips inside the data change values only: both ways must give the same values, or the same refusal.
      expect(plain(viaFastPath('f32', bytes)), `trial ${trial}`).toEqual(plain(general('f32', bytes)));
    }
  });

  it('steps aside for a model whose message the general decoder’s budget refuses', () => {
    const many = Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`t${i}`, [1]]));
    expect(expectedWire('f32', many, TENSOR_DECODE_BUDGET).readable).toBe(false);
    expect(expectedWire('f32', { [`n${'x'.repeat(2000)}`]: [1] }, TENSOR_DECODE_BUDGET).readable).toBe(false);
    expect(expectedF32.readable).toBe(true);
  });
});
