import { describe, expect, it } from 'vitest';
import { encodeWithFeedback, getCodec } from '../shared/codec/index.ts';
import { tensorsToArrays } from '../shared/codec/named.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import { createUniform } from '../shared/training/random.ts';
import { codecSlack, compareGradients } from './verification-compare.ts';

const uniform = createUniform(3);
const random = (count: number) => Float32Array.from({ length: count }, () => uniform() - 0.5);
const gradient = (): NamedArrays => ({ 'd_conv/kernel': random(512), 'd_conv/bias': random(8).map((v) => v * 2e-3), 'g_dense/kernel': random(256) });
const networkOf = (name: string) => (name.startsWith('g_') ? 'generator' : 'discriminator');
const scaled = (values: Float32Array, factor: number) => values.map((v) => v * factor);

describe('compareGradients', () => {
  it('agrees with itself at distance 0, and within the tolerance', () => {
    const a = gradient();
    expect(compareGradients(a, structuredClone(a), 1e-3)).toEqual({ agree: true, distance: 0, tensor: '' });
    const near = Object.fromEntries(Object.entries(a).map(([name, values]) => [name, scaled(values, 1 + 5e-4)]));
    const comparison = compareGradients(a, near, 1e-3);
    expect(comparison.agree).toBe(true);
    expect(comparison.distance).toBeCloseTo(5e-4 / (1 + 5e-4), 6);
  });

  it('disagrees past the tolerance and names the tensor at fault', () => {
    const a = gradient();
    const b = { ...structuredClone(a), 'g_dense/kernel': scaled(a['g_dense/kernel'], 1.01) };
    expect(compareGradients(a, b, 1e-3)).toMatchObject({ agree: false, tensor: 'g_dense/kernel' });
    expect(compareGradients(a, b, 1e-3).distance).toBeCloseTo(0.01 / 1.01, 6);
  });

  it('catches a flipped small tensor that a norm over the whole update would hide', () => {
    const a = gradient();
    const b: NamedArrays = { ...structuredClone(a), 'd_conv/bias': scaled(a['d_conv/bias'], -1) };
    const bias = Math.hypot(...a['d_conv/bias']);
    let difference = 0;
    let norm = 0;
    for (const name of Object.keys(a)) {
      for (let i = 0; i < a[name].length; i++) {
        difference += (a[name][i] - b[name][i]) ** 2;
        norm += a[name][i] ** 2;
      }
    }
    expect(Math.sqrt(difference / norm)).toBeLessThan(1e-3);
    // Judged against its even share of the discriminator's norm, which is larger than its own norm.
    const evenShare = Math.hypot(...a['d_conv/kernel'], ...a['d_conv/bias']) * Math.sqrt(8 / 520);
    expect(evenShare).toBeGreaterThan(bias);
    const comparison = compareGradients(a, b, 1e-3, { networkOf });
    expect(comparison).toMatchObject({ agree: false, tensor: 'd_conv/bias' });
    expect(comparison.distance).toBeCloseTo((2 * bias) / evenShare, 6);
  });

  it('does not mistake the float noise of a nearly cancelled tensor for a disagreement', () => {
    // A 1-element bias whose terms of both signs nearly cancel: 1e-6, computed in another order as 1.01e-6.
    const a: NamedArrays = { 'd_conv/kernel': random(512), 'd_logit/bias': new Float32Array([1e-6]) };
    const b: NamedArrays = { 'd_conv/kernel': a['d_conv/kernel'].slice(), 'd_logit/bias': new Float32Array([1.01e-6]) };
    expect(compareGradients(a, b, 1e-3, { networkOf })).toMatchObject({ agree: true });
    // Against its own norm alone (its even share of a network of itself), it would be a 1% disagreement.
    expect(compareGradients({ b: a['d_logit/bias'] }, { b: b['d_logit/bias'] }, 1e-3)).toMatchObject({ agree: false });
  });

  it('judges each network by its own norm: a small generator gradient flipped beside a large discriminator one is caught', () => {
    const a: NamedArrays = { 'd_conv/kernel': random(512), 'g_dense/kernel': scaled(random(256), 1e-3) };
    const b: NamedArrays = { 'd_conv/kernel': a['d_conv/kernel'].slice(), 'g_dense/kernel': scaled(a['g_dense/kernel'], -1) };
    // A flipped gradient is 2 norms away from the original (up to the order the squares were summed in).
    const verdict = compareGradients(a, b, 1e-3, { networkOf });
    expect(verdict).toMatchObject({ agree: false, tensor: 'g_dense/kernel' });
    expect(verdict.distance).toBeCloseTo(2, 12);
  });

  it('a zero tensor agrees only with zero; a missing tensor never agrees', () => {
    const zero = { w: new Float32Array(4) };
    expect(compareGradients(zero, { w: new Float32Array(4) }, 1e-3).agree).toBe(true);
    expect(compareGradients(zero, { w: new Float32Array([0, 0, 1e-30, 0]) }, 1e-3)).toMatchObject({ agree: false, distance: 1 });
    expect(compareGradients({ w: new Float32Array(4), v: new Float32Array(2) }, zero, 1e-3)).toMatchObject({ agree: false, distance: Infinity, tensor: 'v' });
  });

  it('a lossy codec widens the tolerance by its documented error bound; lossless ones by nothing', () => {
    expect(codecSlack('f32')(random(16))).toBe(0);
    const int8 = getCodec('int8');
    const values = random(1024);
    const roundTrip = (data: Float32Array) => int8.decode(int8.encode({ w: { dtype: 'float32', shape: [data.length], data } })).w.data as Float32Array;
    // Two honest gradients 1e-4 apart, each quantized to int8: where they round to different steps they move ~1% apart.
    const noise = random(1024);
    const [a, b] = [roundTrip(values), roundTrip(values.map((v, i) => v + 1e-4 * noise[i]))];
    expect(compareGradients({ w: a }, { w: b }, 1e-3)).toMatchObject({ agree: false });
    expect(compareGradients({ w: a }, { w: b }, 1e-3, { slackA: codecSlack('int8'), slackB: codecSlack('int8') }).agree).toBe(true);
    // A flipped gradient stays far outside even the widened bound.
    expect(compareGradients({ w: a }, { w: roundTrip(scaled(values, -1)) }, 1e-3, { slackA: codecSlack('int8'), slackB: codecSlack('int8') }).agree).toBe(
      false,
    );
  });
});

describe('compareGradients with error feedback', () => {
  const shapes = { w: [1024] };
  /** What an honest worker sends for `gradient` after `history` (its own earlier gradients) with error feedback. */
  function sendAfter(codecId: string, history: Float32Array[], gradient: Float32Array): Float32Array {
    const codec = getCodec(codecId);
    let residuals: NamedArrays = {};
    for (const earlier of history) residuals = encodeWithFeedback(codec, { w: earlier }, residuals, shapes).residuals;
    const { bytes } = encodeWithFeedback(codec, { w: gradient }, residuals, shapes);
    return tensorsToArrays(codec.decode(bytes), shapes).w;
  }

  it.each(['f16', 'int8'])('%s: honest duplicates with their own residuals agree, the referee agrees with each, flipped or scaled ones do not', (codecId) => {
    const gradient = random(1024);
    // Each worker's last rounds were its own batches, some much larger than this one: residuals of the most they may carry.
    const [historyA, historyB] = [1, 2].map((seed) => [0, 1, 2].map((round) => scaled(random(1024), 10 ** (round - seed))));
    // Another backend: the copy's gradient 1e-5 apart from the original's.
    const a = sendAfter(codecId, historyA, gradient);
    const b = sendAfter(
      codecId,
      historyB,
      gradient.map((v) => v * (1 + 1e-5 * (uniform() - 0.5))),
    );
    const slack = codecSlack(codecId, { errorFeedback: true });
    const pair = { slackA: slack, slackB: slack };
    expect(compareGradients({ w: a }, { w: b }, 1e-3, pair).agree).toBe(true);
    // The referee's own gradient is exact: only the worker's side carries a codec's error.
    for (const sent of [a, b]) expect(compareGradients({ w: gradient }, { w: sent }, 1e-3, { slackB: slack }).agree).toBe(true);
    // Flipped, or scaled by 1.1, after the same honest history: far outside even the widened bound.
    for (const cheat of [scaled(gradient, -1), scaled(gradient, 1.1)]) {
      const sent = sendAfter(codecId, historyB, cheat);
      expect(compareGradients({ w: a }, { w: sent }, 1e-3, pair).agree).toBe(false);
      expect(compareGradients({ w: gradient }, { w: sent }, 1e-3, { slackB: slack }).agree).toBe(false);
    }
  });

  it('int8: the residual an honest worker carries would be a mismatch under the slack of the codec alone', () => {
    const gradient = random(1024);
    const sent = sendAfter('int8', [scaled(random(1024), 10)], gradient);
    expect(compareGradients({ w: gradient }, { w: sent }, 1e-3, { slackB: codecSlack('int8') }).agree).toBe(false);
    expect(compareGradients({ w: gradient }, { w: sent }, 1e-3, { slackB: codecSlack('int8', { errorFeedback: true }) }).agree).toBe(true);
  });
});
