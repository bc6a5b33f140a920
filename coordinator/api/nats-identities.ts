import type { Hono } from 'hono';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { subjects } from '../../shared/protocol/subjects.ts';
import type { Hub } from '../hub.ts';
import type { NatsIdentityPool } from '../nats-identities.ts';
import { sameToken } from '../secrets.ts';
import { errorBody, headerToken, refuseRequest } from './auth.ts';

/** Connection ids of the workers connected over NATS now. */
export function liveNatsIds(hub: Hub): string[] {
  const ids: string[] = [];
  for (const session of hub.sessions.values()) {
    if (session.channel?.transport === 'nats') ids.push(subjects.connectionOf(session.channel.remote));
  }
  return ids;
}

/**
 * POST /api/nats/worker-identity: lends a worker process its own NATS
 * identity (an nkey seed of the pool deploy/nats-users.ts made) for the
 * shared worker token in the Authorization header. Join tokens do not get
 * one: they are public links, and browsers join over WebSockets anyway.
 */
export function addNatsIdentityRoutes(app: Hono, hub: Hub, options: { workerToken?: string; natsIdentities?: NatsIdentityPool }): void {
  app.post('/api/nats/worker-identity', (c) => {
    const { workerToken, natsIdentities } = options;
    const given = headerToken(c);
    if (workerToken === undefined || given === undefined || !sameToken(given, workerToken)) {
      return refuseRequest(
        c,
        hub.refusals,
        401,
        new TesseraError(ErrorCode.Unauthorized, 'NATS identities are lent for the worker token (Authorization: Bearer …)', { field: 'authorization' }),
      );
    }
    // After the token: whether this coordinator lends identities is its configuration, not for strangers to probe.
    if (!natsIdentities)
      return c.json(
        errorBody(
          new TesseraError(ErrorCode.InvalidConfig, 'this coordinator lends no NATS identities (it has no TESSERA_NATS_WORKER_SEEDS_FILE)', {
            field: 'TESSERA_NATS_WORKER_SEEDS_FILE',
          }),
        ),
        404,
      );
    const identity = natsIdentities.lend(liveNatsIds(hub));
    if (!identity) {
      return c.json(
        errorBody(
          new TesseraError(
            ErrorCode.InvalidConfig,
            `all ${natsIdentities.size} NATS worker identities are in use; make a larger pool with deploy/nats-users.ts`,
            { field: 'TESSERA_NATS_WORKER_SEEDS_FILE' },
          ),
        ),
        503,
      );
    }
    return c.json(identity, 200, { 'cache-control': 'no-store' });
  });
}
