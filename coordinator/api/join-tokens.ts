import type { Context, Hono } from 'hono';
import * as check from '../../shared/protocol/check.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Hub } from '../hub.ts';
import { identityOf } from '../identity.ts';
import { JOIN_TOKEN_TTL, type JoinTokenRecord, type JoinTokens } from '../join-tokens.ts';
import { errorBody, requireToken } from './auth.ts';

/** A day: long enough for an event or a class, short enough that a forgotten link dies by itself. */
const DEFAULT_TTL_SECONDS = 24 * 3600;

function fail(c: Context, status: 400 | 404, error: TesseraError) {
  return c.json(errorBody(error), status);
}

/** The coordinator's address as the admin reached it (behind a proxy, as the proxy says). */
function originOf(c: Context): string {
  const url = new URL(c.req.url);
  const proto = c.req.header('x-forwarded-proto')?.split(',')[0].trim();
  const host = c.req.header('x-forwarded-host')?.split(',')[0].trim();
  return `${proto === 'https' || proto === 'http' ? proto : url.protocol.slice(0, -1)}://${host || url.host}`;
}

/** What the API shows of a token: its record, whether it has expired, and how many workers it has connected now. */
function describe(record: JoinTokenRecord, hub: Hub) {
  const identity = identityOf(hub);
  let workers = 0;
  for (const session of hub.sessions.values()) if (session.channel && identity.joinedWithToken(session) === record.id) workers += 1;
  return { ...record, expired: Date.parse(record.expiresAt) <= Date.now(), workers };
}

/** The body of POST /api/jobs/:id/join-tokens, checked at the door. */
function parseRequest(body: unknown): { ttlSeconds: number; label: string } {
  const request = check.record(body ?? {}, '', ['ttlSeconds', 'label']);
  return {
    ttlSeconds:
      request.ttlSeconds === undefined
        ? DEFAULT_TTL_SECONDS
        : check.integer(request.ttlSeconds, 'ttlSeconds', JOIN_TOKEN_TTL.minSeconds, JOIN_TOKEN_TTL.maxSeconds),
    label: check.string(request.label ?? '', 'label', 200),
  };
}

/**
 * Join links, admin only: issue one for a job (the token is shown once), list
 * them, revoke one (which also disconnects the workers that joined with it).
 * The admin token comes in the Authorization header only.
 */
export function addJoinTokenRoutes(app: Hono, hub: Hub, options: { adminToken: string }): void {
  const admin = requireToken(() => [options.adminToken]);
  const joinTokensOf = (c: Context): JoinTokens | TesseraError => {
    const id = c.req.param('id')!;
    if (!hub.runners.has(id)) return new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(id)}`, { field: 'id' });
    return identityOf(hub).joinTokens ?? new TesseraError(ErrorCode.InvalidConfig, 'this coordinator issues no join tokens', { field: 'id' });
  };

  app.post('/api/jobs/:id/join-tokens', admin, async (c) => {
    const joinTokens = joinTokensOf(c);
    if (joinTokens instanceof TesseraError) return fail(c, 404, joinTokens);
    let request: { ttlSeconds: number; label: string };
    try {
      const text = await c.req.text();
      request = parseRequest(text.trim() === '' ? {} : JSON.parse(text));
    } catch (error) {
      return fail(
        c,
        400,
        error instanceof TesseraError
          ? error
          : new TesseraError(ErrorCode.InvalidMessage, 'the body must be JSON: {"ttlSeconds": N, "label": "…"}', { field: 'body' }),
      );
    }
    const jobId = c.req.param('id');
    const { token, record } = await joinTokens.issue(jobId, request);
    const url = `${originOf(c)}/join?job=${encodeURIComponent(jobId)}&token=${token}`;
    return c.json({ ...describe(record, hub), token, url }, 201);
  });

  app.get('/api/jobs/:id/join-tokens', admin, async (c) => {
    const joinTokens = joinTokensOf(c);
    if (joinTokens instanceof TesseraError) return fail(c, 404, joinTokens);
    return c.json({ tokens: (await joinTokens.list(c.req.param('id'))).map((record) => describe(record, hub)) });
  });

  app.delete('/api/jobs/:id/join-tokens/:tokenId', admin, async (c) => {
    const joinTokens = joinTokensOf(c);
    if (joinTokens instanceof TesseraError) return fail(c, 404, joinTokens);
    const jobId = c.req.param('id');
    const record = await joinTokens.revoke(jobId, c.req.param('tokenId'));
    if (!record)
      return fail(
        c,
        404,
        new TesseraError(ErrorCode.InvalidMessage, `job ${jobId} has no join token ${JSON.stringify(c.req.param('tokenId'))}`, { field: 'tokenId' }),
      );
    const sessions = [...hub.sessions.values()].filter((session) => session.jobId === jobId);
    const disconnected = identityOf(hub).disconnect(sessions, record.id);
    return c.json({ ...describe(record, hub), disconnected });
  });
}
