import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import type { NatsSettings } from '../runtime/node/nats.ts';

/**
 * Borrows this worker process's own NATS identity from the coordinator
 * (POST /api/nats/worker-identity, for the worker token): an nkey seed the
 * NATS server lets publish only as itself. Identical replicas (a Deployment,
 * `compose --scale`) get one each; the seed stays in memory.
 */

/** One answer: the seed, or why not and whether asking again may help. */
type Answer = { seed: string } | { error: TesseraError; retry: boolean };

async function ask(url: URL, workerToken: string | undefined): Promise<Answer> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: workerToken ? { authorization: `Bearer ${workerToken}` } : {} });
  } catch (error) {
    // Not up yet (a cluster starts its pods in any order).
    return {
      error: new TesseraError(ErrorCode.Internal, `could not reach the coordinator at ${url.origin} for a NATS identity: ${(error as Error).message}`, {
        field: 'coordinator',
        cause: error,
      }),
      retry: true,
    };
  }
  const body = (await response.json().catch(() => ({}))) as { seed?: unknown; error?: { code?: ErrorCode; message?: string; field?: string } };
  if (response.ok && typeof body.seed === 'string') return { seed: body.seed };
  const error = new TesseraError(
    body.error?.code ?? ErrorCode.Internal,
    `the coordinator lent no NATS identity (HTTP ${response.status}): ${body.error?.message ?? 'no seed in the answer'}`,
    { field: body.error?.field ?? 'coordinator' },
  );
  // 503: every identity is in use now, one may free up; 5xx: the coordinator is starting. A wrong token or no pool (401, 404) stays so.
  return { error, retry: response.status >= 500 };
}

/**
 * Borrows an identity, asking again with backoff (1 s doubling to 10 s, up to
 * `attempts` times) while the coordinator is unreachable or has none free;
 * fails at once for a wrong token or a coordinator that lends none.
 */
export async function borrowNatsIdentity(
  coordinatorUrl: string,
  workerToken: string | undefined,
  options: { attempts?: number; onRetry?(error: TesseraError, delayMs: number): void } = {},
): Promise<Pick<NatsSettings, 'nkeySeed'>> {
  const url = new URL('/api/nats/worker-identity', coordinatorUrl);
  const attempts = options.attempts ?? 10;
  for (let attempt = 1; ; attempt++) {
    const answer = await ask(url, workerToken);
    if ('seed' in answer) return { nkeySeed: answer.seed };
    if (!answer.retry || attempt >= attempts) throw answer.error;
    const delayMs = Math.min(10_000, 1_000 * 2 ** (attempt - 1));
    options.onRetry?.(answer.error, delayMs);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}
