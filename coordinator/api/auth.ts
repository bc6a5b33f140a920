import type { Context, MiddlewareHandler } from 'hono';
import type { ErrorBody } from '../../shared/api/errors.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { sameToken } from '../secrets.ts';

/** The token of an `Authorization: Bearer T` header. */
export function headerToken(c: Context): string | undefined {
  const header = c.req.header('authorization');
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
}

/** The error body every API failure uses: `{ error: { code, message, field } }`. */
export function errorBody(error: TesseraError): ErrorBody {
  return { error: error.toWire() };
}

/**
 * Answers a worker-facing request with a refusal and counts it with the hub's
 * other refusals of bad input, by code (an HTTP request has no channel to
 * report it on).
 */
export function refuseRequest(c: Context, refusals: Map<ErrorCode, number>, status: 400 | 401 | 403 | 404 | 503, error: TesseraError) {
  refusals.set(error.code, (refusals.get(error.code) ?? 0) + 1);
  return c.json(errorBody(error), status);
}

const unauthorized = (message: string) => new TesseraError(ErrorCode.Unauthorized, message, { field: 'authorization' });

/**
 * Lets a request through only with one of the tokens in its Authorization
 * header; an empty list lets everything through (reading is open unless the
 * config sets a read token).
 *
 * `inQuery` are the tokens also taken from `?token=`: only the read token,
 * because the browser's EventSource (the dashboard's live view) cannot set
 * headers. A URL ends up in proxy logs, browser history and Referer headers,
 * so a token that may change the job (the admin token) never travels in one:
 * it is refused there even where the read token would be taken.
 */
export function requireToken(tokens: () => (string | undefined)[], inQuery: () => (string | undefined)[] = () => []): MiddlewareHandler {
  return async (c, next) => {
    const accepted = tokens().filter((token): token is string => !!token);
    if (accepted.length === 0) return next();
    const given = headerToken(c);
    if (given !== undefined) {
      if (!accepted.some((token) => sameToken(given, token))) return c.json(errorBody(unauthorized('wrong token')), 401);
      return next();
    }
    const query = c.req.query('token');
    if (query === undefined) return c.json(errorBody(unauthorized('this route needs a token (Authorization: Bearer …)')), 401);
    const queryable = inQuery().filter((token): token is string => !!token);
    if (queryable.some((token) => sameToken(query, token))) return next();
    const message = accepted.some((token) => sameToken(query, token)) ? 'this token is taken in the Authorization header only, not in the URL' : 'wrong token';
    return c.json(errorBody(unauthorized(message)), 401);
  };
}
