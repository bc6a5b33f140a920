import { l2Norm } from '../aggregate/norms.ts';
import { arraysToTensors, decodeArrays } from './named.ts';
import type { BoundGrowth, NamedArrays, TensorCodec } from './types.ts';

/**
 * Error feedback for a lossy codec (Seide et al. 2014; Karimireddy et al. 2019, "Error feedback fixes SignSGD"): a
 * worker sends encode(g + r) and keeps r = (g + r) - decode(encode(g + r)), so what a rounding took from one update is
 * added to the next, and the sum of the updates sent tracks the sum of the gradients within one quantization error.
 *
 * The carried residual is shortened, per tensor, to at most ||B(g)||, the L2 norm of the codec's error bound for this
 * round's gradient g. Without that, a residual left by a large gradient would ride on a much smaller one, and nothing
 * the coordinator receives would bound it: with it, an honest update s obeys
 *   ||s - g|| <= ||B(g + r)|| + ||r|| <= ||B(g + r)|| (1 + scale / (1 - perChange)) <= feedbackSlackFactor x ||B(s)||
 * (BoundGrowth's two inequalities, with e = -r and ||r|| <= ||B(g)||), which the verification checks from s alone.
 * Shortening drops error only where a tensor's gradient fell below the residual it carries (its norm by ~40% or more
 * from one round to the next, as a residual is about a uniform rounding error, 1/sqrt(3) of its bound): about 10% of
 * the tensors sent in a dcgan run (docs/training-runs.md).
 */

/**
 * Covers the float32 rounding of g + r (at most 2^-24 |g + r| an element: under 2^-12 of B for f16, whose B is
 * 2^-11 |x|, and under 2^-16 for int8, whose B is at least |x| / 254) and of the shortened residual.
 */
const ROUNDING_MARGIN = 1 + 2 ** -10;
/** The shortened residual aims this far under its bound, so its float32 products cannot round past it. */
const SHORTEN_MARGIN = 1 - 2 ** -20;

/**
 * The factor on ||B(decoded)|| bounding ||sent - gradient|| of an honest update sent with error feedback: 2.0034 for
 * f16 and 2.0692 for int8 (without feedback the factor is fromDecoded, ~1: the carried residual doubles the slack).
 */
export function feedbackSlackFactor(growth: BoundGrowth): number {
  return growth.fromDecoded * (1 + growth.scale / (1 - growth.perChange)) * ROUNDING_MARGIN;
}

/** Whether a codec can carry error feedback: lossy, with a documented bound and how it grows. */
export function supportsFeedback(codec: TensorCodec): codec is TensorCodec & Required<Pick<TensorCodec, 'errorBound' | 'boundGrowth'>> {
  return !codec.lossless && codec.errorBound !== undefined && codec.boundGrowth !== undefined;
}

/** One update encoded with error feedback, and the residuals it leaves for the next. */
export interface FeedbackStep {
  bytes: Uint8Array;
  residuals: NamedArrays;
  /** Tensors whose carried residual was shortened to ||B(g)||. */
  shortened: string[];
}

/**
 * Encodes `grads` plus the carried `residuals` (absent ones are zero) and returns the bytes (a copy: the encoder's
 * output views a buffer the next encode reuses) and the new residuals, computed from what the receiver will decode. A
 * tensor whose residual would not be finite (a non-finite gradient, which the receiver refuses) starts again from zero.
 * A codec without feedback support sends the gradients alone and leaves no residuals.
 */
export function encodeWithFeedback(codec: TensorCodec, grads: NamedArrays, residuals: NamedArrays, shapes: Record<string, number[]>): FeedbackStep {
  if (!supportsFeedback(codec)) return { bytes: codec.encode(arraysToTensors(grads, shapes)).slice(), residuals: {}, shortened: [] };
  const sent: NamedArrays = {};
  const shortened: string[] = [];
  for (const name of Object.keys(shapes)) {
    const gradient = grads[name];
    const residual = residuals[name];
    const norm = residual ? l2Norm(residual) : 0;
    if (!(norm > 0 && Number.isFinite(norm))) {
      sent[name] = gradient.slice();
      continue;
    }
    const bound = l2Norm(codec.errorBound(gradient));
    const factor = norm > bound ? (bound / norm) * SHORTEN_MARGIN : 1;
    if (factor < 1) shortened.push(name);
    const values = new Float32Array(gradient.length);
    for (let i = 0; i < values.length; i++) values[i] = gradient[i] + factor * residual[i];
    sent[name] = values;
  }
  const bytes = codec.encode(arraysToTensors(sent, shapes)).slice();
  const decoded = decodeArrays(codec, bytes, shapes);
  // What was sent is not needed once encoded: each array becomes its residual in place.
  for (const [name, residual] of Object.entries(sent)) {
    const got = decoded[name];
    let finite = true;
    for (let i = 0; i < residual.length; i++) {
      residual[i] -= got[i];
      finite &&= Number.isFinite(residual[i]);
    }
    if (!finite) residual.fill(0);
  }
  return { bytes, residuals: sent, shortened };
}
