import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { jetStreamNames, replicasFor } from './jetstream-limits.ts';
import { isTransient } from './retry.ts';

describe('replicasFor', () => {
  it('is min(3, servers advertised) when not asked', () => {
    expect(replicasFor(undefined, undefined)).toBe(1);
    expect(replicasFor(undefined, ['a:4222'])).toBe(1);
    expect(replicasFor(undefined, ['a:4222', 'b:4222'])).toBe(2);
    expect(replicasFor(undefined, ['a:4222', 'b:4222', 'c:4222'])).toBe(3);
    expect(replicasFor(undefined, ['a', 'b', 'c', 'd', 'e'])).toBe(3);
  });

  it('takes what it is asked, from 1 to 5, and names --store-replicas otherwise', () => {
    expect(replicasFor(3, undefined)).toBe(3);
    for (const wrong of [0, 6, 2.5, Number.NaN]) {
      expect(() => replicasFor(wrong, [])).toThrow(expect.objectContaining({ code: ErrorCode.InvalidConfig, field: 'store-replicas' }));
    }
  });
});

describe('jetStreamNames', () => {
  it('keeps the round log outside the workers’ tessera.> subjects', () => {
    expect(jetStreamNames('broadcast').roundsSubject.startsWith('tessera.')).toBe(false);
  });
});

describe('isTransient', () => {
  it('retries timeouts and elections, not refusals', () => {
    expect(isTransient({ code: 'TIMEOUT', message: 'TIMEOUT' })).toBe(true);
    expect(isTransient({ code: '503', message: 'no responders' })).toBe(true);
    expect(isTransient(new Error('JetStream system temporarily unavailable'))).toBe(true);
    expect(isTransient(new Error('insufficient resources'))).toBe(false);
    expect(isTransient(new Error('maximum bytes exceeded'))).toBe(false);
  });
});
