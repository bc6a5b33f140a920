import { l2Norm } from '../shared/aggregate/norms.ts';
import { feedbackSlackFactor, getCodec } from '../shared/codec/index.ts';
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

/**
 * The slack of a codec by its wire id: what encoding may have moved the values, as an L2 norm, from the decoded values
 * (the bound of the decoded ones x BoundGrowth.fromDecoded, 1 + 2^-11 at most). With error feedback an honest update
 * also carries the residual of earlier rounds, at most the bound of this round's gradient: feedbackSlackFactor x the
 * decoded values' bound, 2.0034 for f16 and 2.0692 for int8 (shared/codec/error-feedback.ts derives both).
 */
export function codecSlack(codecId: string, options: { errorFeedback?: boolean } = {}): CodecSlack {
  const codec = getCodec(codecId);
  if (codec.lossless || !codec.errorBound) return () => 0;
  const growth = codec.boundGrowth;
  const factor = !growth ? 1 : options.errorFeedback ? feedbackSlackFactor(growth) : growth.fromDecoded;
  return (values) => factor * l2Norm(codec.errorBound!(values));
}

const exact: CodecSlack = () => 0;

export interface CompareOptions {
  /** What each side's codec may have moved its values (the referee's own gradient is exact). */
  slackA?: CodecSlack;
  slackB?: CodecSlack;
  /** The network a tensor belongs to (ModelSpec.networkOf); one network for all when absent. */
  networkOf?: (tensor: string) => string;
}

/**
 * Compares two gradients of the same assignment, tensor by tensor: Adam
 * normalizes each coordinate, so flipping a tensor with a small gradient
 * (a bias) moves the weights as much as flipping a large one, yet would hide
 * in a norm over the whole update. The metric is the relative L2 distance
 * `||a - b|| / scale`, scale the larger of the two norms, as the browser test
 * measures across backends, but never less than the tensor's even share of
 * its network's norm, `||network|| x sqrt(size / network size)`: a tensor
 * whose gradient nearly cancels (a 1-element bias summing terms of both
 * signs) keeps the float noise of the terms it summed, and backends summing
 * in another order differ there far beyond 1e-3 of the tiny result (8e-3
 * seen between Node wasm and Chromium WebGPU). They agree when every tensor
 * is within `tolerance` of its scale, plus what the codecs may have moved it.
 */
export function compareGradients(a: NamedArrays, b: NamedArrays, tolerance: number, options: CompareOptions = {}): Comparison {
  const { slackA = exact, slackB = exact, networkOf = () => '' } = options;
  const [normsA, normsB] = [networkNorms(a, networkOf), networkNorms(b, networkOf)];
  const result: Comparison = { agree: true, distance: 0, tensor: '' };
  for (const [name, left] of Object.entries(a)) {
    const right = b[name];
    if (!right || right.length !== left.length) return { agree: false, distance: Infinity, tensor: name };
    let squared = 0;
    for (let i = 0; i < left.length; i++) squared += (left[i] - right[i]) ** 2;
    const difference = Math.sqrt(squared);
    const network = normsA.get(networkOf(name))!;
    const evenShare = Math.max(network.norm, normsB.get(networkOf(name))?.norm ?? 0) * Math.sqrt(left.length / network.size);
    const scale = Math.max(l2Norm(left), l2Norm(right), evenShare);
    const distance = difference === 0 ? 0 : scale === 0 ? Infinity : difference / scale;
    const fits = difference <= tolerance * scale + slackA(left) + slackB(right);
    // Name the farthest tensor at fault; when all fit, the farthest of all.
    if ((!fits && result.agree) || (fits === result.agree && distance > result.distance)) Object.assign(result, { distance, tensor: name });
    result.agree &&= fits;
  }
  return result;
}

/** Each network's L2 norm and element count. */
function networkNorms(gradient: NamedArrays, networkOf: (tensor: string) => string): Map<string, { norm: number; size: number }> {
  const sums = new Map<string, { squared: number; size: number }>();
  for (const [name, values] of Object.entries(gradient)) {
    const network = sums.get(networkOf(name)) ?? { squared: 0, size: 0 };
    for (let i = 0; i < values.length; i++) network.squared += values[i] * values[i];
    network.size += values.length;
    sums.set(networkOf(name), network);
  }
  return new Map([...sums].map(([network, { squared, size }]) => [network, { norm: Math.sqrt(squared), size }]));
}
