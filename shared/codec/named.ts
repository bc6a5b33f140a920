import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import type { NamedArrays, NamedTensors, TensorCodec } from './types.ts';

/** Float32 arrays with their shapes, as tensors a codec can encode. */
export function arraysToTensors(arrays: NamedArrays, shapes: Record<string, number[]>): NamedTensors {
  const tensors: NamedTensors = {};
  for (const name of Object.keys(shapes)) tensors[name] = { dtype: 'float32', shape: shapes[name], data: arrays[name] };
  return tensors;
}

/**
 * Checks decoded tensors against the expected names and shapes (all float32)
 * and returns their data. The error names the tensor at fault.
 */
export function tensorsToArrays(tensors: NamedTensors, shapes: Readonly<Record<string, readonly number[]>>, field = 'tensors'): NamedArrays {
  const arrays: NamedArrays = {};
  for (const name of Object.keys(tensors)) {
    if (!(name in shapes)) throw new TesseraError(ErrorCode.TensorMismatch, 'a tensor the model does not have', { field: `${field}.${name}` });
  }
  for (const [name, shape] of Object.entries(shapes)) {
    const tensor = tensors[name];
    if (!tensor) throw new TesseraError(ErrorCode.TensorMismatch, 'missing tensor', { field: `${field}.${name}` });
    if (tensor.dtype !== 'float32') {
      throw new TesseraError(ErrorCode.TensorMismatch, `expected dtype float32, got ${tensor.dtype}`, { field: `${field}.${name}.dtype` });
    }
    if (tensor.shape.length !== shape.length || tensor.shape.some((size, i) => size !== shape[i])) {
      throw new TesseraError(ErrorCode.TensorMismatch, `expected shape [${shape}], got [${tensor.shape}]`, { field: `${field}.${name}.shape` });
    }
    arrays[name] = tensor.data as Float32Array;
  }
  return arrays;
}

/**
 * Decodes `bytes` in `codec` to float32 arrays of exactly `shapes` (into
 * `into`'s arrays, see TensorCodec.decode): the codec's own fast path when it
 * has one, else decode and tensorsToArrays. The error names the tensor at fault.
 */
export function decodeArrays(
  codec: TensorCodec,
  bytes: Uint8Array,
  shapes: Readonly<Record<string, readonly number[]>>,
  field = 'tensors',
  into?: NamedArrays,
): NamedArrays {
  return codec.decodeArrays ? codec.decodeArrays(bytes, shapes, field, into) : tensorsToArrays(codec.decode(bytes, into), shapes, field);
}

/** SHA-256 of the bytes, hex: the content address of a weights version (Web Crypto exists in Node 20 and browsers). */
export async function contentHash(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}
