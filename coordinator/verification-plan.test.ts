import { describe, expect, it } from 'vitest';
import { createUniform } from '../shared/training/random.ts';
import { PROBE_SHARE, planCopies } from './verification-plan.ts';

const fleet = (count: number, quarantined: string[] = [], suspicion: Record<string, number> = {}) =>
  Array.from({ length: count }, (_, i) => ({ id: `w${i}`, quarantined: quarantined.includes(`w${i}`), suspicion: suspicion[`w${i}`] ?? 0 }));

describe('planCopies', () => {
  it('copies nothing at share 0, and pairs every trusted worker at share 1 (each in one pair at most)', () => {
    expect(planCopies(fleet(4), 0, createUniform(1))).toEqual({ copies: new Map(), resting: [] });
    const { copies } = planCopies(fleet(5), 1, createUniform(1));
    expect(copies.size).toBe(2);
    const involved = [...copies].flat();
    expect(new Set(involved).size).toBe(4);
    for (const original of copies.values()) expect(copies.has(original)).toBe(false);
  });

  it('duplicates about `share` of the assignments, each worker as original and as copy alike', () => {
    const random = createUniform(2);
    const asCopy = new Map<string, number>();
    let pairs = 0;
    const rounds = 20_000;
    for (let round = 0; round < rounds; round++) {
      for (const copy of planCopies(fleet(4), 0.05, random).copies.keys()) {
        pairs += 1;
        asCopy.set(copy, (asCopy.get(copy) ?? 0) + 1);
      }
    }
    // Each original but the last drawn has a partner to give its copy to: ~0.05 x 3 pairs a round (a copy gives up its own turn).
    expect(pairs / rounds).toBeGreaterThan(0.13);
    expect(pairs / rounds).toBeLessThan(0.155);
    for (const count of asCopy.values()) expect(count / pairs).toBeCloseTo(0.25, 1);
  });

  it('checks a suspected worker at its suspicion, with the least suspected worker as its copy', () => {
    const random = createUniform(4);
    let checked = 0;
    let byUnsuspected = 0;
    const rounds = 4000;
    for (let round = 0; round < rounds; round++) {
      const { copies } = planCopies(fleet(4, [], { w3: 0.8, w2: 0.2 }), 0.05, random);
      const pair = [...copies].find((entry) => entry.includes('w3'));
      if (!pair) continue;
      checked += 1;
      if (/^w[01]$/.test(pair.find((id) => id !== 'w3')!)) byUnsuspected += 1;
    }
    // Drawn first, so checked at its suspicion, by one of the two nothing speaks against.
    expect(checked / rounds).toBeCloseTo(0.8, 1);
    expect(byUnsuspected).toBe(checked);
  });

  it('gives a quarantined worker, in a quarter of the rounds, a copy of a trusted original, and otherwise nothing', () => {
    let probes = 0;
    for (let seed = 0; seed < 400; seed++) {
      const { copies, resting } = planCopies(fleet(4, ['w1', 'w3']), 0.5, createUniform(seed));
      for (const suspect of ['w1', 'w3']) {
        if (resting.includes(suspect)) {
          expect(copies.has(suspect)).toBe(false);
          continue;
        }
        probes += 1;
        const original = copies.get(suspect)!;
        expect(['w0', 'w2']).toContain(original);
        // The original does its own assignment: it is nobody's copy.
        expect(copies.has(original)).toBe(false);
      }
    }
    expect(probes / 800).toBeCloseTo(PROBE_SHARE, 1);
  });

  it('with no trusted worker, or duplicates off, the quarantined ones rest and nobody is checked', () => {
    expect(planCopies(fleet(2, ['w0', 'w1']), 0.05, createUniform(1))).toEqual({ copies: new Map(), resting: ['w0', 'w1'] });
    expect(planCopies(fleet(4, ['w0'], { w1: 1 }), 0, createUniform(1))).toEqual({ copies: new Map(), resting: ['w0'] });
  });

  it('is a function of the random stream: the same seed plans the same rounds', () => {
    const plans = (seed: number) => {
      const random = createUniform(seed);
      return Array.from({ length: 100 }, () => [...planCopies(fleet(6, ['w5']), 0.2, random).copies]);
    };
    expect(plans(9)).toEqual(plans(9));
    expect(plans(9)).not.toEqual(plans(10));
  });
});
