import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

/** The token a request carries: `Authorization: Bearer T`, or `?token=T` (EventSource cannot set headers). */
export function tokenOf(c: Context): string | undefined {
  const header = c.req.header('authorization');
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim();
  return c.req.query('token') ?? undefined;
}

function sameToken(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The error body every API failure uses: `{ error: { code, message, field } }`. */
export function errorBody(error: TesseraError) {
  return { error: error.toWire() };
}

/**
 * Lets a request through only with one of the tokens; an empty list lets
 * everything through (reading is open unless the config sets a read token).
 */
export function requireToken(tokens: () => (string | undefined)[]): MiddlewareHandler {
  return async (c, next) => {
    const accepted = tokens().filter((token): token is string => !!token);
    if (accepted.length === 0) return next();
    const given = tokenOf(c);
    if (given === undefined) return c.json(errorBody(new TesseraError(ErrorCode.Unauthorized, 'this route needs a token (Authorization: Bearer …)', { field: 'authorization' })), 401);
    if (!accepted.some((token) => sameToken(given, token))) return c.json(errorBody(new TesseraError(ErrorCode.Unauthorized, 'wrong token', { field: 'authorization' })), 401);
    return next();
  };
}
