/** Element types a tensor on the wire can have. */
export type DType = 'float32' | 'int32' | 'uint8' | 'bool' | 'float16' | 'float64';

export type TypedArrayOf<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'int32'
    ? Int32Array
    : D extends 'uint8' | 'bool'
      ? Uint8Array
      : D extends 'float16'
        ? Uint16Array
        : Float64Array;

export type TensorData = Float32Array | Int32Array | Uint8Array | Uint16Array | Float64Array;

/** A tensor as plain data: what crosses the wire and what the aggregation math works on. */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

/** Tensors by name, in a stable order (insertion order of the record). */
export type NamedTensors = Record<string, HostTensor>;

/** Float32 tensors by name: gradients, weights, optimizer slots. */
export type NamedArrays = Record<string, Float32Array>;

/**
 * Turns named tensors into bytes and back. Looked up by `id`, the same id that
 * travels in messages (`update.codec`).
 */
export interface TensorCodec {
  readonly id: string;
  /** Whether decode(encode(x)) equals x to the bit. */
  readonly lossless: boolean;
  encode(tensors: NamedTensors): Uint8Array;
  /**
   * `into`: float32 arrays by tensor name to decode into instead of fresh
   * ones (a tensor whose name or element count does not match gets a fresh
   * array), for a reader that decodes many messages of one model and reuses
   * its memory; the returned tensors' data are then those arrays.
   */
  decode(bytes: Uint8Array, into?: NamedArrays): NamedTensors;
  /**
   * Optional, for speed: float32 tensors of exactly `shapes`, as
   * tensorsToArrays(decode(bytes, into), shapes, field) returns them, with
   * the same errors (shared/codec/named.ts decodeArrays calls one or the other).
   */
  decodeArrays?(bytes: Uint8Array, shapes: Readonly<Record<string, readonly number[]>>, field: string, into?: NamedArrays): NamedArrays;
  /**
   * The most bytes encode() writes for float32 tensors of these shapes: the
   * coordinator refuses a larger update before decoding it.
   */
  maxEncodedBytes(shapes: Readonly<Record<string, readonly number[]>>): number;
  /**
   * Lossy codecs only: the documented bound on |decoded - original| for each
   * element of a float32 tensor with finite values, so tests can hold the codec to it.
   */
  errorBound?(original: Float32Array): Float32Array;
  /**
   * Lossy codecs only: how the L2 norm of `errorBound` moves, so a receiver can bound an update sent with error feedback
   * from the decoded values alone (shared/codec/error-feedback.ts).
   */
  readonly boundGrowth?: BoundGrowth;
}

/**
 * Two inequalities a codec's error bound B obeys, as L2 norms over one float32 tensor (finite values):
 * ||B(x)|| <= fromDecoded * ||B(decode(encode(x)))|| (the receiver sees only the decoded values), and
 * ||B(x + e)|| <= scale * ||B(x)|| + perChange * ||e|| (how far the bound can move when the values move by e).
 */
export interface BoundGrowth {
  fromDecoded: number;
  scale: number;
  perChange: number;
}
