import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../shared/protocol/errors.ts';
import type { RoundSummary } from './job/round.ts';
import { formatQuality, formatRound, progressBar } from './progress.ts';

function summary(round: number, version: number, applied = true): RoundSummary {
  const update = {
    workerId: 'w1',
    round,
    samples: 32,
    weight: 32,
    finishMs: 400,
    shardIds: [0],
    grads: {},
    losses: { d: 0.5, g: 2 },
    computeMs: 400,
    fetchMs: 0,
    bytes: 10,
    receivedAt: 0,
  };
  return {
    round,
    version,
    durationMs: 500,
    deadlineMs: 2000,
    updates: applied ? [update] : [],
    late: [],
    failures: applied ? [] : [{ workerId: 'w1', code: ErrorCode.WrongRound, message: 'late' }],
    samples: applied ? 32 : 0,
    losses: applied ? { d: 0.5, g: 2 } : {},
    samplesPerSecond: applied ? 64 : 0,
    applied,
    outliers: [],
    excluded: [],
  };
}

describe('formatRound', () => {
  it('names the round by its wire number, the one workers and error messages use', () => {
    const line = formatRound(summary(54, 54), (id) => `name-${id}`, 0);
    expect(line).toBe('round 54 | D 0.500 G 2.000 | 1 updates, 32 samples | name-w1 80/s | total 64.0 samples/s in 0.50 s');
  });

  it('shows the steps apart from the round once a round applied nothing', () => {
    expect(formatRound(summary(55, 54), String, 0)).toMatch(/^round 55 \(step 55\) \|/);
    expect(formatRound(summary(56, 55, false), String, 0)).toMatch(
      /^round 56 \(step 55\) \| no losses .*\| 1 missed \(WRONG_ROUND\) \| no update: weights unchanged$/,
    );
  });

  it('counts a round budget in steps, with a bar', () => {
    expect(formatRound(summary(9, 9), String, 20)).toMatch(/^\[#{10}-{10}\] {2}50% round 9, step 10 of 20 \|/);
  });
});

describe('progressBar', () => {
  it('clamps to [0, 1]', () => {
    expect(progressBar(-1, 4)).toBe('[----]   0%');
    expect(progressBar(2, 4)).toBe('[####] 100%');
  });
});

describe('formatQuality', () => {
  const row = {
    kind: 'quality',
    round: 199,
    version: 200,
    samplesSeen: 12_800,
    wallMs: 180_000,
    closedAt: '',
    dataset: 'mnist',
    count: 500,
    frechet: 61.23,
    frechetFloor: 20.4,
    precision: 0.712,
    recall: 0.55,
    recognisable: 0.834,
    coverageEntropy: 0.98,
    ms: 2_140,
  } as const;

  it('names the step scored and the headline figures, and what the family adds', () => {
    expect(formatQuality(row)).toBe(
      'quality at step 200 (after round 199) | Fréchet 61.2, floor 20.4 | 83% recognisable, precision 0.71, recall 0.55 | 500 samples in 2.1 s',
    );
    expect(formatQuality({ ...row, labelAgreement: 0.914 })).toContain('recall 0.55, label agreement 91% |');
  });
});
