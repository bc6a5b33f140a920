import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { INT8_BLOCK, int8BlockScale, int8Codec } from './int8.ts';
import { pack } from './packr.ts';

function wire(count: number, data: Uint8Array): Uint8Array {
  return pack({ codec: 'int8', tensors: [{ name: 'w', dtype: 'float32', shape: [count], data }] });
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (error) {
    return error instanceof TesseraError ? `${error.code} ${error.field}` : `ESCAPED ${error}`;
  }
}

describe('int8 codec', () => {
  it('uses one float32 scale per 256 values plus one byte per value', () => {
    const count = 3 * INT8_BLOCK + 1;
    const bytes = int8Codec.encode({ w: { dtype: 'float32', shape: [count], data: new Float32Array(count).fill(1) } });
    expect(bytes.length).toBeGreaterThanOrEqual(4 * 4 + count);
    expect(bytes.length).toBeLessThan(4 * 4 + count + 80); // the rest is the msgpack envelope
  });

  it('decodes zero as zero, ±max to opposite values, the rest within scale/2', () => {
    const data = new Float32Array([0.5, -0.5, 0.25, 0, -0.125]);
    const out = int8Codec.decode(int8Codec.encode({ w: { dtype: 'float32', shape: [5], data } })).w.data as Float32Array;
    const scale = int8BlockScale(data, 0, 5);
    expect(out[3]).toBe(0);
    expect(out[0]).toBe(-out[1]);
    for (let i = 0; i < 5; i++) expect(Math.abs(out[i] - data[i])).toBeLessThanOrEqual(scale / 2);
  });

  it('rounds the scale up so a tiny block never gets a zero scale', () => {
    const data = new Float32Array([1e-45, -1e-45, 0]);
    expect(int8BlockScale(data, 0, 3)).toBeGreaterThan(0);
    const out = int8Codec.decode(int8Codec.encode({ w: { dtype: 'float32', shape: [3], data } })).w.data as Float32Array;
    expect([...out]).toEqual([...data]);
  });

  it('decodes a block holding NaN or infinity as all NaN and leaves other blocks alone', () => {
    const data = new Float32Array(2 * INT8_BLOCK).fill(0.5);
    data[3] = Infinity;
    const out = int8Codec.decode(int8Codec.encode({ w: { dtype: 'float32', shape: [data.length], data } })).w.data as Float32Array;
    expect(out.subarray(0, INT8_BLOCK).every(Number.isNaN)).toBe(true);
    expect(out.subarray(INT8_BLOCK).every((v) => Math.abs(v - 0.5) < 0.01)).toBe(true);
  });

  it('refuses scales and values its encoder never writes', () => {
    const count = 3;
    const make = (scale: number, q: number[]) => {
      const bytes = new Uint8Array(4 + count);
      new DataView(bytes.buffer).setFloat32(0, scale, true);
      bytes.set(new Uint8Array(new Int8Array(q).buffer), 4);
      return wire(count, bytes);
    };
    expect(codeOf(() => int8Codec.decode(make(0.5, [1, -127, 127])))).toBe('ok');
    expect(codeOf(() => int8Codec.decode(make(-1, [1, 2, 3])))).toBe(`${ErrorCode.InvalidMessage} tensors[0].data`);
    expect(codeOf(() => int8Codec.decode(make(Infinity, [1, 2, 3])))).toBe(`${ErrorCode.InvalidMessage} tensors[0].data`);
    expect(codeOf(() => int8Codec.decode(make(NaN, [0, 1, 0])))).toBe(`${ErrorCode.InvalidMessage} tensors[0].data`);
    expect(codeOf(() => int8Codec.decode(make(NaN, [0, 0, 0])))).toBe('ok');
    expect(codeOf(() => int8Codec.decode(make(0.5, [1, -128, 3])))).toBe(`${ErrorCode.InvalidMessage} tensors[0].data`);
    expect(codeOf(() => int8Codec.decode(wire(count, new Uint8Array(count))))).toBe(`${ErrorCode.TensorMismatch} tensors[0].data`);
  });
});
