import { describe, expect, it } from 'vitest';
import { gaussian } from '../../training/random.ts';
import { ddimSample, ddimStep, ddpmSample, guide, samplingTimesteps, type EpsilonModel } from './sampler.ts';
import { makeSchedule, type NoiseSchedule } from './schedule.ts';

const schedule = makeSchedule('cosine', 1000);
const start = Float64Array.from(gaussian(64, 5));

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/**
 * The exact ε-model of data that is the constant c: x_t = sqrt(ᾱ_t) c + sqrt(1-ᾱ_t) ε,
 * so ε = (x - sqrt(ᾱ_t) c) / sqrt(1-ᾱ_t). c = 0 is the point mass at the origin.
 */
function pointMass(schedule: NoiseSchedule, c: ArrayLike<number>): EpsilonModel {
  return (x, t) => {
    const alphaBar = schedule.alphaBars[t];
    return x.map((value, i) => (value - Math.sqrt(alphaBar) * c[i]) / Math.sqrt(1 - alphaBar));
  };
}

describe('samplingTimesteps', () => {
  it('spaces DDIM steps evenly from T-1 (pure noise) down to 0', () => {
    const steps = samplingTimesteps(1000, 50);
    expect(steps).toHaveLength(50);
    expect(steps[0]).toBe(999);
    expect(steps.at(-1)).toBe(0);
    for (let k = 1; k < steps.length; k++) {
      expect(steps[k]).toBeLessThan(steps[k - 1]);
      expect(Math.abs(steps[k - 1] - steps[k] - 999 / 49)).toBeLessThanOrEqual(1);
    }
    expect(samplingTimesteps(10, 50)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(samplingTimesteps(1000, 1)).toEqual([999]);
  });
});

describe('DDIM with a fixed ε-model reproduces the analytic result', () => {
  it.each([1, 3, 50, 1000])('data at the origin: from any x_T, %i steps land at x_0 = 0', async (count) => {
    const x0 = await ddimSample(pointMass(schedule, new Float64Array(start.length)), start, schedule, count);
    expect(maxAbsDifference(x0, new Float64Array(start.length))).toBeLessThan(1e-12);
  });

  it('data at a constant c: lands at c, with or without clipping x̂_0 (c inside [-1, 1])', async () => {
    const c = Float64Array.from(start, (_, i) => -0.9 + (1.8 * i) / (start.length - 1));
    for (const clipDenoised of [false, true]) {
      const x0 = await ddimSample(pointMass(schedule, c), start, schedule, 20, { clipDenoised });
      expect(maxAbsDifference(x0, c), `clip ${clipDenoised}`).toBeLessThan(1e-12);
    }
  });

  it('clipping x̂_0 lands data outside [-1, 1] on the boundary', async () => {
    const c = Float64Array.from(start, (_, i) => (i % 2 === 0 ? 3 : -0.5));
    const x0 = await ddimSample(pointMass(schedule, c), start, schedule, 20, { clipDenoised: true });
    expect(
      maxAbsDifference(
        x0,
        c.map((value) => Math.min(1, value)),
      ),
    ).toBeLessThan(1e-12);
  });

  it('data N(0, 1): every step rotates by the angle between the two ᾱ, so x_0 = x_T Π cos(θ_t - θ_prev), tending to x_T (the flow is the identity)', async () => {
    // For standard normal data x_t ~ N(0, 1) at every t and E[ε | x_t] = sqrt(1-ᾱ_t) x_t.
    const standardNormal: EpsilonModel = (x, t) => x.map((value) => Math.sqrt(1 - schedule.alphaBars[t]) * value);
    const angle = (alphaBar: number) => Math.acos(Math.sqrt(alphaBar));
    const factors: number[] = [];
    for (const count of [10, 50, 1000]) {
      const steps = samplingTimesteps(1000, count);
      let factor = 1;
      steps.forEach((t, k) => {
        const previous = k + 1 < steps.length ? schedule.alphaBars[steps[k + 1]] : 1;
        factor *= Math.cos(angle(schedule.alphaBars[t]) - angle(previous));
      });
      const x0 = await ddimSample(standardNormal, start, schedule, count);
      expect(
        maxAbsDifference(
          x0,
          start.map((value) => value * factor),
        ),
        `${count} steps`,
      ).toBeLessThan(1e-12);
      factors.push(factor);
    }
    expect(factors[0]).toBeLessThan(factors[1]);
    expect(factors[1]).toBeLessThan(factors[2]);
    expect(factors[2]).toBeGreaterThan(0.99);
  });

  it('one step from ᾱ_t to ᾱ_prev = 1 returns x̂_0 = (x - sqrt(1-ᾱ) ε) / sqrt(ᾱ)', () => {
    const x = Float64Array.from([0.5, -1.5]);
    const result = ddimStep(x, [1, -2], 0.25, 1);
    expect(result[0]).toBeCloseTo((0.5 - Math.sqrt(0.75)) / 0.5, 14);
    expect(result[1]).toBeCloseTo((-1.5 + 2 * Math.sqrt(0.75)) / 0.5, 14);
  });
});

describe('ancestral DDPM sampling with a fixed ε-model', () => {
  it('lands exactly on point-mass data whatever noise each step adds (the last step adds none)', async () => {
    const small = makeSchedule('linear', 50);
    const c = Float64Array.from(start, (_, i) => Math.sin(i));
    const noiseAt = (t: number) => gaussian(start.length, 100 + t);
    const x0 = await ddpmSample(pointMass(small, c), start, small, noiseAt);
    expect(maxAbsDifference(x0, c)).toBeLessThan(1e-12);
  });
});

describe('guide', () => {
  it('is ε_uncond + w (ε_cond - ε_uncond): unconditional at w = 0, conditional at w = 1', () => {
    const conditional = [1, 2];
    const unconditional = [0.5, -1];
    expect(Array.from(guide(conditional, unconditional, 0))).toEqual(unconditional);
    expect(Array.from(guide(conditional, unconditional, 1))).toEqual(conditional);
    expect(Array.from(guide(conditional, unconditional, 3))).toEqual([2, 8]);
  });
});
