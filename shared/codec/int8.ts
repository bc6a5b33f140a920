import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { checkByteLength, losslessData, wireCodec, type DataCodec } from './tensor-wire.ts';

/** Values per quantization block: one float32 scale each, so 1.6% overhead over int8. */
export const INT8_BLOCK = 256;

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * Scale of a block: maxabs/127 rounded *up* to float32, so |x/scale| <= 127
 * needs no clamp and a tiny nonzero block never gets a zero scale. NaN if the
 * block holds NaN or ±Infinity.
 */
export function int8BlockScale(values: Float32Array, start: number, end: number): number {
  let max = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(values[i]);
    if (a > max) max = a;
    else if (a !== a) return NaN;
  }
  if (max === Infinity) return NaN;
  const exact = max / 127;
  scratchF32[0] = exact;
  if (scratchF32[0] < exact) scratchU32[0]++; // next float32 up; exact > 0 here, so bits are positive
  return scratchF32[0];
}

/**
 * Documented int8 bound for finite x: half a quantization step, plus the
 * float32 rounding of q·scale: |err| <= scale·(1/2 + 2^-16) + 2^-149.
 */
export function int8ErrorBound(original: Float32Array): Float32Array {
  const bound = new Float32Array(original.length);
  for (let start = 0; start < original.length; start += INT8_BLOCK) {
    const end = Math.min(start + INT8_BLOCK, original.length);
    const scale = int8BlockScale(original, start, end);
    bound.fill(scale * (0.5 + 2 ** -16) + 2 ** -149, start, end);
  }
  return bound;
}

// Layout of a float32 tensor: [blocks × float32 scale, little-endian][count × int8].
export const int8Data: DataCodec = {
  encode(tensor) {
    if (tensor.dtype !== 'float32') return losslessData.encode(tensor);
    const src = tensor.data as Float32Array;
    const blocks = Math.ceil(src.length / INT8_BLOCK);
    const out = new Uint8Array(blocks * 4 + src.length);
    const scales = new Float32Array(out.buffer, 0, blocks);
    const q = new Int8Array(out.buffer, blocks * 4, src.length);
    for (let b = 0; b < blocks; b++) {
      const start = b * INT8_BLOCK;
      const end = Math.min(start + INT8_BLOCK, src.length);
      const scale = int8BlockScale(src, start, end);
      scales[b] = scale;
      // Zero or NaN scale: q stays 0; a NaN block decodes as all NaN, so the
      // receiver's finiteness check still sees the non-finite gradient.
      if (!(scale > 0)) continue;
      // In doubles, x·(1/scale) is off by ~2^-52 relative: far inside the bound's slack.
      const inverse = 1 / scale;
      // Round to nearest (ties up) as floor(x + 0.5), written as a truncation of a
      // positive number: branch-free, and several times faster than Math.round in V8.
      for (let i = start; i < end; i++) q[i] = ((src[i] * inverse + 128.5) | 0) - 128;
    }
    return out;
  },
  maxBytes: (dtype, count) => (dtype === 'float32' ? Math.ceil(count / INT8_BLOCK) * 4 + count : losslessData.maxBytes(dtype, count)),
  decode(bytes, dtype, count, field, into) {
    if (dtype !== 'float32') return losslessData.decode(bytes, dtype, count, field);
    const blocks = Math.ceil(count / INT8_BLOCK);
    checkByteLength(bytes.byteLength, blocks * 4 + count, field);
    const view = new DataView(bytes.buffer, bytes.byteOffset, blocks * 4);
    // Int8 needs no alignment, so the quantized values are read in place.
    const q = new Int8Array(bytes.buffer, bytes.byteOffset + blocks * 4, count);
    const out = into ?? new Float32Array(count);
    for (let b = 0; b < blocks; b++) {
      const scale = view.getFloat32(b * 4, true);
      const start = b * INT8_BLOCK;
      const end = Math.min(start + INT8_BLOCK, count);
      if (Number.isNaN(scale)) {
        for (let i = start; i < end; i++) if (q[i] !== 0) bad(field, `block ${b} has a NaN scale but nonzero values`);
        out.fill(NaN, start, end);
        continue;
      }
      // The encoder never writes these; accepting them would decode a tensor no sender meant.
      if (!(scale >= 0) || scale === Infinity) bad(field, `block ${b} has scale ${scale}`);
      for (let i = start; i < end; i++) {
        const v = q[i];
        if (v === -128) bad(field, `value ${i} is -128, outside [-127, 127]`);
        out[i] = v * scale;
      }
    }
    return out;
  },
};

function bad(field: string, message: string): never {
  throw new TesseraError(ErrorCode.InvalidMessage, `int8 data: ${message}`, { field });
}

/**
 * Lossy: float32 tensors are quantized per block of 256 to int8 with one
 * float32 scale (maxabs/127); see int8ErrorBound. A block with NaN or ±Infinity
 * decodes as all NaN. Other dtypes travel as in f32.
 */
export const int8Codec = wireCodec('int8', false, int8Data, int8ErrorBound, {
  // A block's largest |q| is 127 (its scale is maxabs/127 rounded up by under 2^-23), so its decoded maximum is 127 x scale
  // rounded to float32 (2^-24 relative), and the decoded block's own scale is at least the sent one x (1 - 2^-24).
  fromDecoded: 1 / (1 - 2 ** -24),
  // A block's maxabs grows by at most max|e| over the block, so its scale by max|e| / 127, and rounding up adds 2^-23 relative
  // (scales in float32's normal range: block maxima above 1.5e-36). Summed in L2 over blocks of 256, max|e| per block is
  // at most its L2 norm, so ||B(x + e)|| <= (1 + 2^-23)(||B(x)|| + sqrt(256) (1/2 + 2^-16) / 127 ||e||).
  scale: 1 + 2 ** -23,
  perChange: ((1 + 2 ** -23) * Math.sqrt(INT8_BLOCK) * (0.5 + 2 ** -16)) / 127,
});
