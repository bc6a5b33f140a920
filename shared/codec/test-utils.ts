import { createUniform } from '../training/random.ts';
import type { DType, HostTensor, NamedTensors, TensorData } from './types.ts';
import { arrayClassOf, elementCount } from './tensor-wire.ts';

/** Seeded uniform [0, 1) generator (mulberry32): tests must fail the same way twice. */
export const mulberry32 = createUniform;

/** Random finite float32 values spread over magnitudes 1e-6..1e3, as gradients are, with some zeros. */
export function randomFloats(count: number, rand: () => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const r = rand();
    out[i] = r < 0.02 ? 0 : (rand() * 2 - 1) * 10 ** (rand() * 9 - 6);
  }
  return out;
}

/** Random data for any dtype; float16 and float64 include NaN, infinities and -0 bit patterns. */
export function randomData(dtype: DType, count: number, rand: () => number): TensorData {
  if (dtype === 'float32') return randomFloats(count, rand);
  const data = new (arrayClassOf(dtype))(count);
  if (dtype === 'bool') {
    for (let i = 0; i < count; i++) data[i] = rand() < 0.5 ? 0 : 1;
    return data;
  }
  // Random bytes cover every bit pattern of the integer and float types.
  const bytes = new Uint8Array(data.buffer);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (rand() * 256) | 0;
  return data;
}

/** A random tensor of the given dtype and shape. */
export function randomTensor(dtype: DType, shape: number[], rand: () => number): HostTensor {
  return { dtype, shape, data: randomData(dtype, elementCount(shape), rand) };
}

/** Random bytes of the given length. */
export function randomBytes(length: number, rand: () => number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (rand() * 256) | 0;
  return out;
}

/** Index of the first byte where two tensors' data differ, or -1 (bitwise, so NaN and -0 count). */
export function firstByteDifference(a: TensorData, b: TensorData): number {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** A deep copy, so tests can compare against what was encoded after mutating the input. */
export function cloneTensors(tensors: NamedTensors): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, t] of Object.entries(tensors)) out[name] = { dtype: t.dtype, shape: [...t.shape], data: t.data.slice() };
  return out;
}
