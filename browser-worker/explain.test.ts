import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../shared/protocol/errors.ts';
import { describeState, explainRefusal, isLate } from './explain.ts';

describe('explainRefusal', () => {
  it('says what a late update means, then the detail', () => {
    expect(explainRefusal(ErrorCode.WrongRound, 'round 54 is not open (open: 55)')).toBe('your last update arrived late: the round had closed (round 54 is not open (open: 55))');
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
