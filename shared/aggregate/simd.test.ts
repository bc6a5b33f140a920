import { describe, expect, it } from 'vitest';
import { randomFloats, mulberry32 } from '../codec/test-utils.ts';
import { squaredNorms } from './norms.ts';
import { SimdArena, simdArena } from './simd.ts';
import { addScaled } from './weighted-mean.ts';

/** The bits of float64 values, so -0, NaN payloads and every last bit compare. */
const bits = (values: Float64Array | number[]) => Array.from(new BigUint64Array(Float64Array.from(values).buffer), String);

describe('SimdArena: the fold loops in WebAssembly SIMD, bit for bit the plain loops', () => {
  const arena = simdArena();

  it('exists here (Node 20 has WebAssembly SIMD)', () => {
    expect(arena).toBeDefined();
  });

  it('sums squares and adds scaled values to the bit as the plain loops do, at every length mod 4 and with non-finite values', () => {
    const rand = mulberry32(42);
    for (const length of [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 1000, 22_403]) {
      const values = randomFloats(length, rand);
      if (length > 9) values[Math.floor(rand() * length)] = rand() < 0.5 ? Number.NaN : Number.NEGATIVE_INFINITY;
      const start = Array.from({ length }, () => (rand() - 0.5) * 10 ** (rand() * 6 - 3));
      const scale = rand() * 3;
      arena!.reserve(SimdArena.bytesFor([length], [length]));
      const inArena = arena!.float32(length);
      inArena.set(values);
      const sum = arena!.float64(length);
      sum.set(start);
      expect(arena!.holds(inArena) && arena!.holds(sum)).toBe(true);
      // The plain loops on arrays outside the arena.
      const plainSum = Float64Array.from(start);
      addScaled(plainSum, values, scale);
      const plainSquares = squaredNorms({ v: values }).v;
      // The same functions on the arena's arrays go to the kernels.
      addScaled(sum, inArena, scale);
      expect(bits(sum), `length ${length}`).toEqual(bits(plainSum));
      expect(bits([squaredNorms({ v: inArena }).v]), `length ${length}`).toEqual(bits([plainSquares]));
    }
  });

  it('hands out zeroed, 16-byte aligned views within what was reserved, and refuses beyond it', () => {
    arena!.reserve(SimdArena.bytesFor([3], [5]));
    const a = arena!.float32(3);
    a.fill(7);
    const b = arena!.float64(5);
    expect(a.byteOffset % 16).toBe(0);
    expect(b.byteOffset % 16).toBe(0);
    arena!.reserve(SimdArena.bytesFor([3], []));
    expect(Array.from(arena!.float32(3))).toEqual([0, 0, 0]);
    expect(() => arena!.float32(1)).toThrow(/beyond what was reserved/);
  });

  it('leaves a sum outside the arena to the plain loop', () => {
    arena!.reserve(SimdArena.bytesFor([4], []));
    const values = arena!.float32(4);
    values.set([1, 2, 3, 4]);
    const sum = new Float64Array(4);
    addScaled(sum, values, 2);
    expect(Array.from(sum)).toEqual([2, 4, 6, 8]);
  });
});
