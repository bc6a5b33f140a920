import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import type { NatsSettings } from './nats.ts';

/**
 * Borrows this worker process's own NATS identity from the coordinator
 * (POST /api/nats/worker-identity, for the worker token): an nkey seed the
 * NATS server lets publish only as itself. Identical replicas (a Deployment,
 * `compose --scale`) get one each; the seed stays in memory.
 */
export async function borrowNatsIdentity(coordinatorUrl: string, workerToken: string | undefined): Promise<Pick<NatsSettings, 'nkeySeed'>> {
  const url = new URL('/api/nats/worker-identity', coordinatorUrl);
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: workerToken ? { authorization: `Bearer ${workerToken}` } : {} });
  } catch (error) {
    throw new TesseraError(ErrorCode.Internal, `could not reach the coordinator at ${url.origin} for a NATS identity: ${(error as Error).message}`, { field: 'coordinator', cause: error });
  }
  const body = (await response.json().catch(() => ({}))) as { seed?: unknown; error?: { code?: ErrorCode; message?: string } };
  if (!response.ok || typeof body.seed !== 'string') {
    throw new TesseraError(body.error?.code ?? ErrorCode.Internal, `the coordinator lent no NATS identity (HTTP ${response.status}): ${body.error?.message ?? 'no seed in the answer'}`, { field: 'coordinator' });
  }
  return { nkeySeed: body.seed };
}
