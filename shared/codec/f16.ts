import { bytesOf } from './packr.ts';
import { checkByteLength, losslessData, wireCodec, type DataCodec } from './tensor-wire.ts';

// Scratch views to read a float32's bits without allocating.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE half bits (round to nearest, ties to even) of a value taken as float32. */
export function float32ToFloat16Bits(value: number): number {
  scratchF32[0] = value;
  return halfFromFloatBits(scratchU32[0]);
}

/** The float32 value (exact: every half is a float32) of IEEE half bits. */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Half bits from float32 bits, branch-light for speed (after F. Giesen's
 * float_to_half_fast3_rtne): rounding happens once, from the float32 itself.
 */
function halfFromFloatBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const f = bits & 0x7fffffff;
  if (f >= 0x47800000) {
    // Too big for a half (2^16 and up), infinity, or NaN; a NaN keeps its top payload and stays quiet.
    return sign | (f > 0x7f800000 ? 0x7e00 | ((f >>> 13) & 0x3ff) : 0x7c00);
  }
  if (f < 0x38800000) {
    // Below half's smallest normal: adding 0.5 in float32 puts the subnormal's
    // units (2^-24) in the low mantissa bits, and the float32 store rounds to even.
    scratchU32[0] = f;
    scratchF32[0] = scratchF32[0] + 0.5;
    return sign | (scratchU32[0] - 0x3f000000);
  }
  // Rebias the exponent (-112 << 23) and add just under half a unit, plus the
  // unit's parity so exact ties go to even; a carry into exponent or infinity is right.
  return sign | (((f + 0xc8000fff + ((f >>> 13) & 1)) >>> 13) & 0xffff);
}

let table: Float32Array | undefined;
// 65536 entries (256 KB) turn decoding into one lookup per element; built on first use.
function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) table[h] = float16BitsToFloat32(h);
  }
  return table;
}

/** Largest |decoded - x| of f16 for finite x: half an ulp, or Infinity past the overflow point. */
export function f16ErrorBound(original: Float32Array): Float32Array {
  const bound = new Float32Array(original.length);
  for (let i = 0; i < original.length; i++) {
    const a = Math.abs(original[i]);
    bound[i] = a >= 65520 ? Infinity : Math.max(a * 2 ** -11, 2 ** -25);
  }
  return bound;
}

export const f16Data: DataCodec = {
  encode(tensor) {
    if (tensor.dtype !== 'float32') return losslessData.encode(tensor);
    const src = tensor.data as Float32Array;
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    // A Uint16Array is little-endian on every host tensor-wire accepts.
    const out = new Uint16Array(src.length);
    for (let i = 0; i < bits.length; i++) out[i] = halfFromFloatBits(bits[i]);
    return bytesOf(out);
  },
  maxBytes: (dtype, count) => (dtype === 'float32' ? 2 * count : losslessData.maxBytes(dtype, count)),
  decode(bytes, dtype, count, field, into) {
    if (dtype !== 'float32') return losslessData.decode(bytes, dtype, count, field);
    checkByteLength(bytes.byteLength, count * 2, field);
    const lookup = halfTable();
    const out = into ?? new Float32Array(count);
    // Byte pairs, not a Uint16Array: the bytes may start at an odd offset of the message.
    for (let i = 0, j = 0; i < count; i++, j += 2) out[i] = lookup[bytes[j] | (bytes[j + 1] << 8)];
    return out;
  },
};

/**
 * Lossy: float32 tensors travel as IEEE half (|err| <= max(|x|·2^-11, 2^-25);
 * |x| >= 65520 becomes ±Infinity; NaN stays NaN), other dtypes as in f32.
 */
export const f16Codec = wireCodec('f16', false, f16Data, f16ErrorBound, {
  // B(x)_i = max(u|x_i|, m), u = 2^-11, m = 2^-25, and |x_i - s_i| <= B(x)_i for the decoded s_i: where u|x_i| >= m,
  // u|x_i| <= u|s_i| + u B(x)_i gives B(x)_i <= B(s)_i / (1 - u); elsewhere B(x)_i = m <= B(s)_i.
  fromDecoded: 1 / (1 - 2 ** -11),
  // max(u|x_i + e_i|, m) <= max(u|x_i|, m) + u|e_i|, element by element, so in L2 too.
  scale: 1,
  perChange: 2 ** -11,
});
