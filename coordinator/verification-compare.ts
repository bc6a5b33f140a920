import { getCodec } from '../shared/codec/index.ts';
import type { NamedArrays } from '../shared/codec/types.ts';

/** Two gradients of one assignment, compared tensor by tensor. */
export interface Comparison {
  agree: boolean;
  /** Relative L2 distance ||a - b|| / max(||a||, ||b||) of `tensor` (0 when both are zero). */
  distance: number;
  /** The farthest tensor at fault, or the farthest of all when they agree. */
  tensor: string;
}

/** For a lossy codec, the L2 norm of its documented per-element error bound for these values; 0 for lossless ones. */
export type CodecSlack = (values: Float32Array) => number;

const l2 = (values: Float32Array) => {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
};

/** The slack of a codec by its wire id: what decoding may have moved each value, as an L2 norm. */
export function codecSlack(codecId: string): CodecSlack {
  const codec = getCodec(codecId);
  if (codec.lossless || !codec.errorBound) return () => 0;
  return (values) => l2(codec.errorBound!(values));
}

const exact: CodecSlack = () => 0;

/**
 * Compares two gradients of the same assignment. The metric is the one the
 * browser test measures across backends: per tensor, the relative L2
 * distance. Tensor by tensor, not over the whole update: Adam normalizes each
 * coordinate, so flipping a tensor with a small gradient (a bias) would move
 * the weights as much as flipping a large one, yet hide in a global norm.
 * They agree when every tensor is within `tolerance` of the larger norm, plus
 * what each side's codec may have moved it (`slackA`, `slackB`; the referee's
 * own gradient is exact).
 */
export function compareGradients(a: NamedArrays, b: NamedArrays, tolerance: number, slackA: CodecSlack = exact, slackB: CodecSlack = exact): Comparison {
  const result: Comparison = { agree: true, distance: 0, tensor: '' };
  for (const [name, left] of Object.entries(a)) {
    const right = b[name];
    if (!right || right.length !== left.length) return { agree: false, distance: Infinity, tensor: name };
    let squared = 0;
    for (let i = 0; i < left.length; i++) squared += (left[i] - right[i]) ** 2;
    const difference = Math.sqrt(squared);
    const scale = Math.max(l2(left), l2(right));
    const distance = difference === 0 ? 0 : scale === 0 ? Infinity : difference / scale;
    const fits = difference <= tolerance * scale + slackA(left) + slackB(right);
    // Name the farthest tensor at fault; when all fit, the farthest of all.
    if ((!fits && result.agree) || (fits === result.agree && distance > result.distance)) Object.assign(result, { distance, tensor: name });
    result.agree &&= fits;
  }
  return result;
}
