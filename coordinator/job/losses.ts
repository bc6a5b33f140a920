import { ErrorCode, TesseraError, describe } from '../../shared/protocol/errors.ts';

/**
 * Largest |loss| accepted from a worker: no real loss comes near it, and a
 * sample-weighted mean of values below it cannot overflow to Infinity (which
 * the round log would write as null).
 */
export const MAX_LOSS_MAGNITUDE = 1e30;

/** Longest loss name shown in an error's field (the name is the worker's). */
const SHOWN_NAME = 40;

/** Refuses losses named other than the model declares (they become metric labels) and absurd values. */
export function checkLosses(losses: Readonly<Record<string, number>>, declared: readonly string[]): void {
  for (const [name, value] of Object.entries(losses)) {
    const field = `losses.${name.length > SHOWN_NAME ? `${name.slice(0, SHOWN_NAME)}…` : name}`;
    if (!declared.includes(name))
      throw new TesseraError(ErrorCode.InvalidMessage, `expected a loss named ${declared.join(' or ')}, got ${describe(name)}`, { field });
    if (!(Math.abs(value) <= MAX_LOSS_MAGNITUDE))
      throw new TesseraError(ErrorCode.InvalidMessage, `expected a loss within ±${MAX_LOSS_MAGNITUDE}, got ${describe(value)}`, { field });
  }
}
