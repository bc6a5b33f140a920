import { describe, expect, it } from 'vitest';
import { COSINE_OFFSET, cosineBetas, linearBetas, makeSchedule, MAX_BETA, scheduleFromBetas, type ScheduleKind } from './schedule.ts';

/** ᾱ_t computed another way than the running product: exp of the summed log(1 - β). */
function alphaBarsByLogSum(betas: Float64Array): Float64Array {
  const result = new Float64Array(betas.length);
  let logSum = 0;
  betas.forEach((beta, t) => {
    logSum += Math.log1p(-beta);
    result[t] = Math.exp(logSum);
  });
  return result;
}

function expectRelativelyClose(actual: number, expected: number, tolerance: number, label: string): void {
  expect(Math.abs(actual - expected) / Math.abs(expected), label).toBeLessThan(tolerance);
}

describe('linear schedule', () => {
  it('runs from 1e-4 to 0.02 at T = 1000, as in the DDPM paper', () => {
    const betas = linearBetas(1000);
    expect(betas[0]).toBeCloseTo(1e-4, 15);
    expect(betas[999]).toBeCloseTo(0.02, 15);
    expect(betas[500]).toBeCloseTo(1e-4 + (0.0199 * 500) / 999, 15);
  });

  it('reaches the known ᾱ_T = 4.0358e-5 at T = 1000 (numpy: cumprod(1 - linspace(1e-4, 0.02, 1000)))', () => {
    const schedule = makeSchedule('linear', 1000);
    expectRelativelyClose(schedule.alphaBars[999], 4.035829765375676e-5, 1e-9, 'ᾱ_T');
    expectRelativelyClose(schedule.alphaBars[499], 0.07858724288177824, 1e-9, 'ᾱ_500');
    expect(schedule.alphaBars[0]).toBe(0.9999);
  });

  it('scales to other T so that ᾱ_T stays near zero', () => {
    for (const steps of [50, 200, 4000]) {
      const schedule = makeSchedule('linear', steps);
      expect(schedule.alphaBars[steps - 1], `T = ${steps}`).toBeLessThan(1e-3);
      expect(schedule.betas[steps - 1]).toBeCloseTo(Math.min(MAX_BETA, (0.02 * 1000) / steps), 12);
    }
  });
});

describe('cosine schedule', () => {
  it('gives ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2), wherever β is not clipped', () => {
    const steps = 1000;
    const f = (t: number) => Math.cos(((t / steps + COSINE_OFFSET) / (1 + COSINE_OFFSET)) * (Math.PI / 2)) ** 2;
    const schedule = makeSchedule('cosine', steps);
    // Only the last β is clipped (there f(T) = cos²(π/2) ≈ 0 makes β ≈ 1).
    for (let t = 0; t < steps - 1; t++) expectRelativelyClose(schedule.alphaBars[t], f(t + 1) / f(0), 1e-9, `ᾱ at index ${t}`);
    expectRelativelyClose(schedule.alphaBars[499], 0.49384359044063775, 1e-9, 'ᾱ at the midpoint');
    expect(schedule.betas[steps - 1]).toBe(MAX_BETA);
    expect(
      cosineBetas(steps)
        .slice(0, -1)
        .every((beta) => beta < MAX_BETA),
    ).toBe(true);
  });
});

describe.each<ScheduleKind>(['linear', 'cosine'])('%s schedule: derived quantities', (kind) => {
  const steps = 1000;
  const schedule = makeSchedule(kind, steps);

  it('computes ᾱ_t as a running product that agrees with exp(Σ log(1 - β))', () => {
    const byLogs = alphaBarsByLogSum(schedule.betas);
    for (let t = 0; t < steps; t++) expectRelativelyClose(schedule.alphaBars[t], byLogs[t], 1e-10, `ᾱ at index ${t}`);
  });

  it('has β in (0, 1) increasing, ᾱ in (0, 1) decreasing, and ᾱ_{t-1} shifted by one step from 1', () => {
    expect(schedule.alphaBarsPrevious[0]).toBe(1);
    for (let t = 0; t < steps; t++) {
      expect(schedule.betas[t]).toBeGreaterThan(0);
      expect(schedule.betas[t]).toBeLessThan(1);
      expect(schedule.alphaBars[t]).toBeGreaterThan(0);
      expect(schedule.alphaBars[t]).toBeLessThan(1);
      if (t > 0) {
        expect(schedule.betas[t], `β at ${t}`).toBeGreaterThanOrEqual(schedule.betas[t - 1]);
        expect(schedule.alphaBars[t], `ᾱ at ${t}`).toBeLessThan(schedule.alphaBars[t - 1]);
        expect(schedule.alphaBarsPrevious[t]).toBe(schedule.alphaBars[t - 1]);
      }
    }
  });

  it('has the closed-form posterior: variance β̃_t = β_t (1-ᾱ_{t-1})/(1-ᾱ_t) in [0, β_t], mean coefficients that recover x_0 and x_t consistently', () => {
    expect(schedule.posteriorVariance[0]).toBe(0);
    // At the first step the posterior mean is x_0 itself.
    expect(schedule.posteriorMeanX0[0]).toBeCloseTo(1, 12);
    expect(schedule.posteriorMeanXt[0]).toBe(0);
    for (let t = 1; t < steps; t++) {
      const beta = schedule.betas[t];
      const previous = schedule.alphaBars[t - 1];
      const current = schedule.alphaBars[t];
      expectRelativelyClose(schedule.posteriorVariance[t], (beta * (1 - previous)) / (1 - current), 1e-12, `β̃ at ${t}`);
      expect(schedule.posteriorVariance[t]).toBeLessThanOrEqual(beta);
      // Averaged over x_t given x_0, the posterior mean is E[x_{t-1} | x_0] = sqrt(ᾱ_{t-1}) x_0,
      // so c_0 + c_t sqrt(ᾱ_t) = sqrt(ᾱ_{t-1}).
      const meanOfMean = schedule.posteriorMeanX0[t] + schedule.posteriorMeanXt[t] * Math.sqrt(current);
      expectRelativelyClose(meanOfMean, Math.sqrt(previous), 1e-12, `posterior mean at ${t}`);
      // And the variances add up (law of total variance): c_t² (1 - ᾱ_t) + β̃_t = 1 - ᾱ_{t-1}.
      const variance = schedule.posteriorMeanXt[t] ** 2 * (1 - current) + schedule.posteriorVariance[t];
      expectRelativelyClose(variance, 1 - previous, 1e-10, `posterior variance at ${t}`);
    }
  });
});

describe('scheduleFromBetas', () => {
  it("works on any betas and does not keep the caller's array", () => {
    const betas = Float64Array.from([0.1, 0.2, 0.5]);
    const schedule = scheduleFromBetas(betas);
    betas[0] = 0.9;
    expect(Array.from(schedule.alphaBars)).toEqual([0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.5]);
    expect(schedule.steps).toBe(3);
  });
});
