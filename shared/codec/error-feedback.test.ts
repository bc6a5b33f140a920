import { describe, expect, it } from 'vitest';
import { l2Norm } from '../aggregate/norms.ts';
import { encodeWithFeedback, feedbackSlackFactor, supportsFeedback } from './error-feedback.ts';
import { getCodec, listCodecs, type NamedArrays, type TensorCodec } from './index.ts';
import { arraysToTensors, tensorsToArrays } from './named.ts';
import { mulberry32 } from './test-utils.ts';

const feedbackCodecs = listCodecs().filter(supportsFeedback);
const roundTrip = (codec: TensorCodec, values: Float32Array) =>
  tensorsToArrays(codec.decode(codec.encode(arraysToTensors({ w: values }, { w: [values.length] }))), { w: [values.length] }).w;
/** Centred values spread over `decades` orders of magnitude, as gradients are. */
const gradientLike = (count: number, rand: () => number, decades = 3) => Float32Array.from({ length: count }, () => (rand() - 0.5) * 10 ** (-rand() * decades));

/**
 * Sends `rounds` gradients of one tensor with and without feedback; the largest |sum sent - sum of gradients| of each,
 * and with feedback as a share of one rounding: the last update's bound, plus the float32 rounding of each g + r
 * (2^-24 |g + r| a round, which float64 sums do not undo).
 */
function drift(codec: TensorCodec, gradientOf: (round: number) => Float32Array, rounds: number) {
  const shapes = { w: [gradientOf(0).length] };
  const sums = { gradient: new Float64Array(shapes.w[0]), feedback: new Float64Array(shapes.w[0]), plain: new Float64Array(shapes.w[0]) };
  let residuals: NamedArrays = {};
  let lastBound: Float32Array = new Float32Array(0);
  const roundings = new Float64Array(shapes.w[0]);
  for (let round = 0; round < rounds; round++) {
    const gradient = gradientOf(round);
    const step = encodeWithFeedback(codec, { w: gradient }, residuals, shapes);
    expect(step.shortened).toEqual([]);
    const sent = tensorsToArrays(codec.decode(step.bytes), shapes).w;
    const carried = Float32Array.from(gradient, (g, i) => g + (residuals.w?.[i] ?? 0));
    lastBound = codec.errorBound!(carried);
    for (let i = 0; i < carried.length; i++) roundings[i] += 2 ** -24 * Math.abs(carried[i]);
    residuals = step.residuals;
    const plain = roundTrip(codec, gradient);
    for (let i = 0; i < gradient.length; i++) {
      sums.gradient[i] += gradient[i];
      sums.feedback[i] += sent[i];
      sums.plain[i] += plain[i];
    }
  }
  const worst = (sum: Float64Array, bound?: (i: number) => number) =>
    Math.max(...Array.from(sum, (value, i) => Math.abs(value - sums.gradient[i]) / (bound ? bound(i) : 1)));
  return { feedback: worst(sums.feedback), plain: worst(sums.plain), feedbackInBounds: worst(sums.feedback, (i) => lastBound[i] + roundings[i]) };
}

describe('codecs with error feedback', () => {
  it('are f16 and int8: the lossy codecs', () => {
    expect(feedbackCodecs.map((codec) => codec.id)).toEqual(['f16', 'int8']);
    expect(feedbackSlackFactor(getCodec('f16').boundGrowth!)).toBeCloseTo(2.0034, 4);
    expect(feedbackSlackFactor(getCodec('int8').boundGrowth!)).toBeCloseTo(2.0692, 4);
  });
});

describe.each(feedbackCodecs)('error feedback with $id', (codec) => {
  it('keeps the sum of what was sent within one rounding of the sum of the gradients, where without it the error grows', () => {
    // A gradient the codec rounds the same way every round: f16 rounds 1 + 2^-12 to 1; int8 rounds 0.003 beside a 1 (a step of 1/127) to 0.
    const constant = codec.id === 'f16' ? new Float32Array(256).fill(1 + 2 ** -12) : Float32Array.from({ length: 256 }, (_, i) => (i === 0 ? 1 : 0.003));
    const rounds = 256;
    const fixed = drift(codec, () => constant, rounds);
    expect(fixed.feedbackInBounds).toBeLessThanOrEqual(1 + 1e-3);
    const perRound = codec.id === 'f16' ? 2 ** -12 : 0.003;
    expect(fixed.plain).toBeCloseTo(rounds * perRound, 6);
    expect(fixed.feedback).toBeLessThan(fixed.plain / 50);

    // Random gradients of a steady scale: the feedback drift stays within the last rounding's bound (float64 sums of float32 values).
    const rand = mulberry32(11);
    const random = drift(codec, () => gradientLike(1000, rand), rounds);
    expect(random.feedbackInBounds).toBeLessThanOrEqual(1 + 1e-3);
    expect(random.feedback).toBeLessThan(random.plain);
  });

  it('bounds every honest update from its decoded values alone, also when a gradient falls far below the residual it carries', () => {
    const rand = mulberry32(5);
    const shapes = { a: [700], b: [3] };
    const factor = feedbackSlackFactor(codec.boundGrowth!);
    let residuals: NamedArrays = {};
    let shortened = 0;
    let worst = 0;
    for (let round = 0; round < 120; round++) {
      // Scales jumping by up to 10^4 between rounds, so large residuals meet small gradients.
      const scale = 10 ** (rand() * 8 - 6);
      const grads = { a: gradientLike(700, rand).map((v) => v * scale), b: gradientLike(3, rand, 6).map((v) => v * scale) };
      const step = encodeWithFeedback(codec, grads, residuals, shapes);
      shortened += step.shortened.length;
      const sent = tensorsToArrays(codec.decode(step.bytes), shapes);
      for (const name of Object.keys(shapes)) {
        const difference = l2Norm(sent[name].map((v, i) => v - grads[name as 'a' | 'b'][i]));
        const slack = factor * l2Norm(codec.errorBound!(sent[name]));
        worst = Math.max(worst, difference / slack);
      }
      residuals = step.residuals;
    }
    expect(shortened).toBeGreaterThan(20);
    expect(worst).toBeLessThanOrEqual(1);
    // The bound is tight enough to mean something: honest updates use a good part of it.
    expect(worst).toBeGreaterThan(0.2);
  });

  it('holds the two inequalities of its BoundGrowth on random values and concentrated changes', () => {
    const { fromDecoded, scale, perChange } = codec.boundGrowth!;
    const rand = mulberry32(9);
    const norm = (values: Float32Array) => l2Norm(codec.errorBound!(values));
    for (let trial = 0; trial < 200; trial++) {
      const values = gradientLike(513, rand, 1 + (trial % 6)).map((v) => v * 10 ** (rand() * 6 - 3));
      expect(norm(values)).toBeLessThanOrEqual(fromDecoded * norm(roundTrip(codec, values)));
      // A change spread out, or all of it on one element (the worst case for a block's scale).
      const change =
        trial % 2 === 0
          ? values.map(() => (rand() - 0.5) * norm(values) * 0.05)
          : Float32Array.from(values, (_, i) => (i === trial % values.length ? norm(values) * (rand() + 0.1) : 0));
      const moved = values.map((v, i) => v + change[i]);
      expect(norm(moved)).toBeLessThanOrEqual((scale * norm(values) + perChange * l2Norm(change)) * (1 + 1e-6));
    }
  });

  it('starts a tensor over from zero when its residual would not be finite', () => {
    const shapes = { w: [4] };
    const first = encodeWithFeedback(codec, { w: new Float32Array([1, 0.3, 0.001, -2]) }, {}, shapes);
    expect(l2Norm(first.residuals.w)).toBeGreaterThan(0);
    const broken = encodeWithFeedback(codec, { w: new Float32Array([NaN, 0.3, 0.001, -2]) }, first.residuals, shapes);
    expect(Array.from(broken.residuals.w)).toEqual([0, 0, 0, 0]);
  });
});

describe('a lossless codec', () => {
  it('sends the gradients alone and carries nothing', () => {
    const grads = { w: new Float32Array([1, 2, 3]) };
    const step = encodeWithFeedback(getCodec('f32'), grads, {}, { w: [3] });
    expect(step.residuals).toEqual({});
    expect(Array.from(tensorsToArrays(getCodec('f32').decode(step.bytes), { w: [3] }).w)).toEqual([1, 2, 3]);
  });
});
