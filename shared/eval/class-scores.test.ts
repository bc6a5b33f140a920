import { describe, expect, it } from 'vitest';
import { coverageEntropy, labelAgreement, recognisableShare } from './class-scores.ts';

// Three classes; rows: confident 0, confident 1, unsure, confident 0.
const probabilities = [0.95, 0.03, 0.02, 0.01, 0.98, 0.01, 0.5, 0.3, 0.2, 0.91, 0.05, 0.04];

describe('class scores', () => {
  it('counts confident rows as recognisable (strictly above the threshold)', () => {
    expect(recognisableShare(probabilities, 4, 3)).toBe(0.75);
    expect(recognisableShare([0.9, 0.1], 1, 2)).toBe(0);
  });

  it('normalises the coverage entropy: 1 for every class alike, 0 for one class only', () => {
    expect(coverageEntropy([1, 0, 0, 0, 1, 0, 0, 0, 1], 3, 3)).toBeCloseTo(1, 12);
    expect(coverageEntropy([1, 0, 0, 1, 0, 0], 2, 3)).toBe(0);
    // Predicted 0, 1, 0, 0: shares 3/4 and 1/4.
    expect(coverageEntropy(probabilities, 4, 3)).toBeCloseTo(-(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)) / Math.log(3), 12);
  });

  it('scores label agreement over labelled rows only', () => {
    expect(labelAgreement(probabilities, [0, 2, 0, -1], 4, 3)).toBeCloseTo(2 / 3, 12);
    expect(labelAgreement(probabilities, [-1, -1, -1, -1], 4, 3)).toBeUndefined();
  });
});
