import { describe, expect, it } from 'vitest';
import { createUniform } from '../shared/training/random.ts';
import { applyTrust, banTrust, DEFAULT_TRUST_POLICY, initialTrust, releaseTrust, untouched, type TrustEvent, type TrustState } from './trust.ts';

const run = (events: TrustEvent[], from: TrustState = initialTrust()) => events.reduce((state, event) => applyTrust(state, event), from);
const times = (count: number, event: TrustEvent) => Array.from({ length: count }, () => event);
/** The number of events until the worker is first quarantined, or -1. */
function roundsToQuarantine(events: TrustEvent[]): number {
  let state = initialTrust();
  for (const [i, event] of events.entries()) {
    state = applyTrust(state, event);
    if (state.quarantined) return i + 1;
  }
  return -1;
}

describe('trust score', () => {
  it('starts at 1, not quarantined, and leaves the old state as it was', () => {
    const start = initialTrust();
    expect(start).toMatchObject({ score: 1, quarantined: false, banned: false });
    const after = applyTrust(start, { kind: 'mismatch' });
    expect(start.score).toBe(1);
    expect(after.score).toBeCloseTo(0.6);
    expect(untouched(start)).toBe(true);
    expect(untouched(after)).toBe(false);
  });

  it('two confirmed mismatches quarantine; one does not', () => {
    expect(run([{ kind: 'mismatch' }]).quarantined).toBe(false);
    const twice = run(times(2, { kind: 'mismatch' }));
    expect(twice).toMatchObject({ quarantined: true, quarantines: 1 });
    expect(twice.counts.mismatches).toBe(2);
  });

  it('a worker flagged as an outlier every round is quarantined after 30 rounds; one flagged now and then, even in bursts, never is', () => {
    expect(roundsToQuarantine(times(60, { kind: 'round', outlier: true }))).toBe(30);
    // Flagged one round in four at random: 1,000 rounds, never quarantined.
    const uniform = createUniform(7);
    const honest = Array.from({ length: 1000 }, (): TrustEvent => ({ kind: 'round', outlier: uniform() < 0.25 }));
    expect(roundsToQuarantine(honest)).toBe(-1);
    expect(run(honest).score).toBeGreaterThan(0.9);
    // Bursts of 8 flags in a row, every 20 rounds (worse than the 5 in a row centered-clip gave an honest worker).
    const bursts = Array.from({ length: 1000 }, (_, i): TrustEvent => ({ kind: 'round', outlier: i % 20 < 8 }));
    expect(roundsToQuarantine(bursts)).toBe(-1);
  });

  it('eight refusals in a row quarantine; a refusal now and then among clean rounds does not', () => {
    expect(roundsToQuarantine(times(10, { kind: 'refusal' }))).toBe(8);
    const sometimes = Array.from({ length: 500 }, (_, i): TrustEvent => (i % 20 === 0 ? { kind: 'refusal' } : { kind: 'round', outlier: false }));
    expect(roundsToQuarantine(sometimes)).toBe(-1);
  });

  it('recovers slowly with clean rounds: 40 after a mismatch', () => {
    const hit = run([{ kind: 'mismatch' }]);
    expect(run(times(39, { kind: 'round', outlier: false }), hit).score).toBeLessThan(1);
    expect(run(times(40, { kind: 'round', outlier: false }), hit).score).toBeCloseTo(1);
    // Clean rounds never lift a score above 1.
    expect(run(times(5, { kind: 'round', outlier: false })).score).toBe(1);
  });

  it('a soft mismatch costs less than a confirmed one, and one alone quarantines nobody', () => {
    const soft = run([{ kind: 'soft-mismatch' }]);
    expect(soft.score).toBeGreaterThan(run([{ kind: 'mismatch' }]).score);
    expect(run(times(4, { kind: 'soft-mismatch' })).quarantined).toBe(false);
    expect(run(times(5, { kind: 'soft-mismatch' })).quarantined).toBe(true);
  });

  it('a quarantined worker comes back through agreements only, more slowly each time it was quarantined', () => {
    const quarantined = run(times(2, { kind: 'mismatch' }));
    expect(quarantined.score).toBeCloseTo(0.2);
    // Clean rounds do not happen to a quarantined worker's updates; agreements on copies of others' work do.
    const back = run(times(8, { kind: 'agreement' }), quarantined);
    expect(back).toMatchObject({ quarantined: false, outlierRate: 0 });
    expect(run(times(7, { kind: 'agreement' }), quarantined).quarantined).toBe(true);
    const again = run(times(2, { kind: 'mismatch' }), back);
    expect(again).toMatchObject({ quarantined: true, quarantines: 2 });
    // From 0 at half the step: 24 agreements.
    expect(again.score).toBe(0);
    expect(run(times(23, { kind: 'agreement' }), again).quarantined).toBe(true);
    expect(run(times(24, { kind: 'agreement' }), again).quarantined).toBe(false);
  });

  it('a banned worker stays quarantined whatever it does; an admin release clears the ban and the score', () => {
    const banned = banTrust(initialTrust());
    expect(banned).toMatchObject({ banned: true, quarantined: true, score: 0 });
    expect(run(times(100, { kind: 'agreement' }), banned)).toMatchObject({ banned: true, quarantined: true });
    const released = releaseTrust(run(times(3, { kind: 'mismatch' }), banned));
    expect(released).toMatchObject({ banned: false, quarantined: false, score: DEFAULT_TRUST_POLICY.initial });
    expect(released.counts.mismatches).toBe(3);
  });

  it('takes its thresholds from the policy', () => {
    const strict = { ...DEFAULT_TRUST_POLICY, quarantineBelow: 0.7 };
    expect(applyTrust(initialTrust(strict), { kind: 'mismatch' }, strict).quarantined).toBe(true);
  });
});
