import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { checkLosses, MAX_LOSS_MAGNITUDE } from './losses.ts';

/** `CODE field` of what checkLosses throws, or 'ok'. */
function outcome(losses: Record<string, number>): string {
  try {
    checkLosses(losses, ['d', 'g']);
    return 'ok';
  } catch (error) {
    return error instanceof TesseraError ? `${error.code} ${error.field}` : `ESCAPED ${error}`;
  }
}

describe('checkLosses', () => {
  it('accepts the declared names, some or all, with ordinary values', () => {
    expect(outcome({ d: 0.7, g: -3 })).toBe('ok');
    expect(outcome({ g: MAX_LOSS_MAGNITUDE })).toBe('ok');
    expect(outcome({})).toBe('ok');
  });

  it('refuses a name the model does not declare, showing at most its start', () => {
    expect(outcome({ d: 1, mse: 2 })).toBe(`${ErrorCode.InvalidMessage} losses.mse`);
    expect(outcome({ ['x'.repeat(1000)]: 1 })).toBe(`${ErrorCode.InvalidMessage} losses.${'x'.repeat(40)}…`);
    expect(outcome({ constructor: 1 })).toBe(`${ErrorCode.InvalidMessage} losses.constructor`);
  });

  it('refuses absurd values that would overflow the round’s mean', () => {
    expect(outcome({ d: 1e308 })).toBe(`${ErrorCode.InvalidMessage} losses.d`);
    expect(outcome({ d: 1, g: -1e31 })).toBe(`${ErrorCode.InvalidMessage} losses.g`);
    expect(outcome({ d: Number.NaN })).toBe(`${ErrorCode.InvalidMessage} losses.d`);
  });
});
