import { describe, expect, it } from 'vitest';
import { describeQuality, formatWallTime, qualitySeriesOf, type QualityFacts } from './quality.ts';

const row: QualityFacts = {
  round: 499,
  version: 500,
  samplesSeen: 32_000,
  wallMs: 754_000,
  count: 500,
  frechet: 61.23,
  frechetFloor: 20.4,
  precision: 0.712,
  recall: 0.55,
  recognisable: 0.834,
  coverageEntropy: 0.981,
  ms: 9_400,
};

describe('quality figures', () => {
  it('chart the distance beside its floor, and the recognisable share', () => {
    expect(qualitySeriesOf(row)).toEqual({ frechet: 61.23, frechetFloor: 20.4, recognisable: 0.834 });
  });

  it('say when, how far from the floor, and what the family adds', () => {
    expect(describeQuality(row)).toBe(
      'After round 499 (32,000 samples seen, 13 min in): Fréchet 61.2 (3.0× the floor of 20.4), recognisable 83%, precision 0.71, recall 0.55, class coverage 0.98; 500 samples scored in 9.40 s.',
    );
    expect(describeQuality({ ...row, labelAgreement: 0.92 })).toContain('class coverage 0.98, label agreement 92%;');
    expect(describeQuality({ ...row, reconstructionRecognisable: 0.07 })).toContain('reconstructions recognisable 7.0%');
  });

  it('write wall time as a run is talked about', () => {
    expect(formatWallTime(42_000)).toBe('42 s');
    expect(formatWallTime(5.5 * 60_000)).toBe('5.5 min');
    expect(formatWallTime(3 * 3600_000)).toBe('3.0 h');
  });
});
