import { describe, expect, it } from 'vitest';
import { f16Codec, float16BitsToFloat32, float32ToFloat16Bits } from './f16.ts';
import { mulberry32 } from './test-utils.ts';

const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];

describe('float32ToFloat16Bits', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [0.333251953125, 0x3555],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0x0000],
    [-0, 0x8000],
  ])('%d -> %s', (value, bits) => {
    expect(float32ToFloat16Bits(value).toString(16)).toBe(bits.toString(16));
  });

  it('maps NaN to a NaN half, whatever the payload', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xffffffff, 0x7f801fff]) {
      const h = float32ToFloat16Bits(f32(bits));
      expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0, bits.toString(16)).toBe(true);
    }
  });

  it('rounds ties to even', () => {
    // Halfway between 1 (0x3c00) and 1+2^-10 (0x3c01): even is 0x3c00.
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    // Halfway between 0x3c01 and 0x3c02: even is 0x3c02.
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // Just above a tie rounds up.
    expect(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    // Subnormal ties: 0.5 and 1.5 units of 2^-24.
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000);
    expect(float32ToFloat16Bits(3 * 2 ** -25)).toBe(0x0002);
    expect(float32ToFloat16Bits(-(2 ** -25) * 1.0000001)).toBe(0x8001);
    // Overflow: the tie above 65504 rounds to even, which is infinity; below it stays finite.
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00);
    expect(float32ToFloat16Bits(65519.99)).toBe(0x7bff);
    // Largest subnormal rounding up into the smallest normal.
    expect(float32ToFloat16Bits(1023.5 * 2 ** -24)).toBe(0x0400);
    // Float32 subnormals are far below half's range.
    expect(float32ToFloat16Bits(f32(0x00000001))).toBe(0x0000);
  });

  it('is the nearest half for random float32s (checked against neighbours)', () => {
    const rand = mulberry32(5);
    for (let i = 0; i < 20000; i++) {
      const x = Math.fround((rand() * 2 - 1) * 2 ** (rand() * 40 - 26));
      const h = float32ToFloat16Bits(x);
      const y = float16BitsToFloat32(h);
      const err = Math.abs(y - x);
      for (const n of [h - 1, h + 1]) {
        if ((n & 0x7fff) >= 0x7c00 || (n & 0x7fff) === 0x7fff) continue;
        expect(err, `${x}`).toBeLessThanOrEqual(Math.abs(float16BitsToFloat32(n) - x));
      }
    }
  });
});

describe('float16BitsToFloat32', () => {
  it.each([
    [0x3c00, 1],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x0400, 2 ** -14],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0xc000, -2],
  ])('%s -> %d', (bits, value) => {
    expect(float16BitsToFloat32(bits)).toBe(value);
  });

  it('decodes -0 and NaN', () => {
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
    expect(float16BitsToFloat32(0xfc01)).toBeNaN();
  });

  it('round-trips every non-NaN half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      if (float32ToFloat16Bits(float16BitsToFloat32(h)) !== h) expect.fail(`0x${h.toString(16)}`);
    }
  });
});

describe('f16 codec', () => {
  it('sends float32 tensors as 2 bytes per element', () => {
    const small = f16Codec.encode({ w: { dtype: 'float32', shape: [1000], data: new Float32Array(1000) } });
    expect(small.length).toBeLessThan(2100);
  });

  it('keeps -0, infinities and NaN, and overflows to infinity', () => {
    const data = new Float32Array([-0, Infinity, -Infinity, NaN, 1e6, -70000, 65504]);
    const out = f16Codec.decode(f16Codec.encode({ s: { dtype: 'float32', shape: [7], data } })).s.data as Float32Array;
    expect(Object.is(out[0], -0)).toBe(true);
    expect([...out.subarray(1)]).toEqual([Infinity, -Infinity, NaN, Infinity, -Infinity, 65504]);
  });
});
