import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { describeRound, describeState, explainRefusal, formatGivenTime, isLate } from './explain.ts';

describe('explainRefusal', () => {
  it('says what a late update means, then the detail', () => {
    expect(explainRefusal(ErrorCode.WrongRound, 'round 54 is not open (open: 55)')).toBe(
      'your last update arrived late: the round had closed (round 54 is not open (open: 55))',
    );
    expect(isLate(ErrorCode.WrongRound)).toBe(true);
    expect(isLate(ErrorCode.NonFinite)).toBe(false);
  });

  it('has words for every code, none of them the bare code', () => {
    for (const code of Object.values(ErrorCode)) {
      const words = explainRefusal(code);
      expect(words, code).not.toContain(code);
      expect(words.length, code).toBeGreaterThan(15);
    }
  });

  it('names a code it does not know rather than hiding it', () => {
    expect(explainRefusal('SOMETHING_NEW', 'detail')).toBe('refused (SOMETHING_NEW) (detail)');
  });
});

describe('describeState', () => {
  it('says what a training tab is doing within the round', () => {
    const training = { state: 'training' as const, share: 12 };
    expect(describeState({ ...training, activity: 'waiting' })).toBe('waiting for the next round');
    expect(describeState({ ...training, activity: 'computing' })).toBe('computing an update of 12 samples');
    expect(describeState({ ...training, activity: 'late' })).toBe('your last update arrived late: the round had closed');
    expect(describeState({ ...training, activity: 'idle' })).toBe('waiting: the job has no round open');
  });

  it('names a spectator as one', () => {
    expect(describeState({ state: 'spectating', activity: 'none', share: 0 })).toMatch(/^watching/);
    expect(describeState({ state: 'calibrating', activity: 'none', share: 0 })).toBe('measuring this device');
  });
});

describe('formatGivenTime', () => {
  it('reads at a glance from seconds to hours', () => {
    expect([2_340, 12_600, 59_400, 245_000, 3_720_000].map(formatGivenTime)).toEqual(['2.3 s', '13 s', '59 s', '4 min 05 s', '1 h 02 min']);
  });
});

describe('describeRound', () => {
  const row = {
    round: 7,
    durationMs: 640,
    updates: [
      { workerId: 'node', samples: 20 },
      { workerId: 'tab', samples: 12 },
    ],
  };

  it("says whether this tab's update was in the round", () => {
    expect(describeRound(row, 'tab')).toBe('round 7: 0.64 s, 2 updates, yours among them (12 samples)');
    expect(describeRound({ ...row, updates: row.updates.slice(0, 1) }, 'tab')).toBe('round 7: 0.64 s, 1 update, none from this tab');
    // A spectator has no worker id: only the round.
    expect(describeRound(row, '')).toBe('round 7: 0.64 s, 2 updates');
  });
});
