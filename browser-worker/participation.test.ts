import { describe, expect, it } from 'vitest';
import { budgetMs, judgeSpeed, paceOf, recheckDelayMs, RECHECK_MAX_MS, type JobDescription } from './participation.ts';

const job = (overrides: { batchSize?: number; mode?: string; localSteps?: number; lastDeadlineMs?: number } = {}): JobDescription => ({
  config: { training: { batchSize: overrides.batchSize ?? 32, mode: overrides.mode, localSteps: overrides.localSteps, roundDeadlineMs: 60_000 } },
  lastRound: overrides.lastDeadlineMs === undefined ? null : { deadlineMs: overrides.lastDeadlineMs },
});

describe('paceOf', () => {
  it('takes the last round deadline, or the ceiling before any round', () => {
    expect(paceOf(job({ lastDeadlineMs: 2000 }))).toEqual({ firstShare: 32, deadlineMs: 2000, roundMs: undefined });
    expect(paceOf(job())).toEqual({ firstShare: 32, deadlineMs: 60_000, roundMs: undefined });
  });

  it('takes the median length of the recent rounds that applied', () => {
    const rounds = [{ durationMs: 9000, applied: true }, ...[600, 700, 500, 40_000, 800].map((durationMs) => ({ durationMs, applied: durationMs !== 40_000 }))];
    // The oldest falls out of the last 20 only when there are more; the unapplied one never counts.
    expect(paceOf(job(), rounds).roundMs).toBe(700);
  });

  it('counts every local step of a local-update round', () => {
    expect(paceOf(job({ batchSize: 16, mode: 'local', localSteps: 4 })).firstShare).toBe(64);
  });
});

describe('judgeSpeed', () => {
  // The figures measured in issue #12: wasm in a tab at 43 samples/s, WebGPU on SwiftShader at about 1.
  const wasm = { fixedMs: 5, perSampleMs: 1000 / 43 };
  const swiftshader = { fixedMs: 400, perSampleMs: 1000 };

  it('joins when the first share keeps the pace of the rounds and fits the deadline', () => {
    const verdict = judgeSpeed(wasm, { firstShare: 32, deadlineMs: 2000, roundMs: 700 });
    expect(verdict.join).toBe(true);
    expect(verdict.predictedMs).toBeCloseTo(5 + (32 * 1000) / 43, 6);
    expect(verdict.samplesPerSecond).toBeCloseTo(32_000 / verdict.predictedMs, 6);
    expect(verdict.reason).toBe('fast enough: 32 samples in about 0.75 s; rounds take 0.70 s now and a round waits up to 2.0 s');
  });

  it('watches, and says why in words, when it would hold every round to its deadline', () => {
    const verdict = judgeSpeed(swiftshader, { firstShare: 32, deadlineMs: 2000, roundMs: 700 });
    expect(verdict.join).toBe(false);
    expect(verdict.reason).toBe(
      'this device would need about 32 s for the 32 samples a new worker gets, and a round waits only 2.0 s: it watches instead of holding every round back',
    );
  });

  it('watches when it would make every round wait for it, though within the deadline', () => {
    const verdict = judgeSpeed(wasm, { firstShare: 32, deadlineMs: 20_000, roundMs: 300 });
    expect(verdict.join).toBe(false);
    expect(verdict.reason).toMatch(/and rounds take 0\.30 s now: it watches instead of making every round wait for it$/);
    // 20% over the pace is still keeping it.
    expect(judgeSpeed({ fixedMs: 0, perSampleMs: 10 }, { firstShare: 30, deadlineMs: 20_000, roundMs: 250 }).join).toBe(true);
    expect(judgeSpeed({ fixedMs: 1, perSampleMs: 10 }, { firstShare: 30, deadlineMs: 20_000, roundMs: 250 }).join).toBe(false);
  });

  it('budgets the smaller of the paced round (with slack) and four fifths of the deadline', () => {
    expect(budgetMs({ firstShare: 32, deadlineMs: 2000, roundMs: 700 })).toBeCloseTo(840, 9);
    expect(budgetMs({ firstShare: 32, deadlineMs: 2000, roundMs: 1500 })).toBe(1600);
    expect(budgetMs({ firstShare: 32, deadlineMs: 2000, roundMs: undefined })).toBe(1600);
  });

  it('with no rounds yet, judges by the deadline alone, keeping a fifth as margin', () => {
    expect(judgeSpeed({ fixedMs: 0, perSampleMs: 50 }, { firstShare: 32, deadlineMs: 2000, roundMs: undefined }).join).toBe(true);
    expect(judgeSpeed({ fixedMs: 1, perSampleMs: 50 }, { firstShare: 32, deadlineMs: 2000, roundMs: undefined }).join).toBe(false);
  });

  it('counts the measured transfers of a round too', () => {
    const pace = { firstShare: 32, deadlineMs: 2000, roundMs: undefined };
    expect(judgeSpeed(wasm, pace, 200).join).toBe(true);
    const verdict = judgeSpeed(wasm, pace, 900);
    expect(verdict.join).toBe(false);
    expect(verdict.predictedMs).toBeCloseTo(905 + (32 * 1000) / 43, 6);
    // The speed shown is the compute speed; the transfers are named apart.
    expect(verdict.samplesPerSecond).toBeCloseTo(judgeSpeed(wasm, pace).samplesPerSecond, 9);
    expect(verdict.reason).toMatch(/about 1\.6 s \(0\.90 s of it fetching weights and sending the update\)/);
  });
});

describe('recheckDelayMs', () => {
  it('doubles from a minute up to the cap', () => {
    expect([0, 1, 2].map(recheckDelayMs)).toEqual([60_000, 120_000, 240_000]);
    expect(recheckDelayMs(30)).toBe(RECHECK_MAX_MS);
  });
});
