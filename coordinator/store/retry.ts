import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

/**
 * True for the errors that a server's loss or a leader election causes and
 * that pass once the cluster has settled (a request timed out, no responder
 * yet, the stream's leader moving). A refusal (permissions, limits, no room
 * for the replicas asked) is not one: retrying would only delay the message.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof TesseraError) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code === 'TIMEOUT' || code === '503' || code === 'DISCONNECT') return true;
  return /time(d)? ?out|no responders|temporarily unavailable|leader|not current|disconnect/i.test(String(message ?? ''));
}

/** A failure of the JetStream store as a TesseraError (field `store`) naming what failed; TesseraErrors pass as they are. */
export function storeError(what: string, error: unknown): TesseraError {
  if (error instanceof TesseraError) return error;
  const message = (error as Error)?.message ?? String(error);
  return new TesseraError(ErrorCode.Internal, `JetStream store: ${what} failed: ${message}`, { field: 'store', cause: error });
}

/**
 * Runs `operation`, again after transient errors (backing off from 100 ms to
 * 1 s) until `retryMs` have passed; then, or on any other error, rejects
 * with storeError. The operation must be safe to repeat. `before` is
 * awaited before every attempt (a write's fence): its rejection ends the
 * retries as it is, and the time it waits does not count against `retryMs`.
 */
export async function retrying<T>(what: string, retryMs: number, operation: () => Promise<T>, before?: () => Promise<void>): Promise<T> {
  let deadline = Date.now() + retryMs;
  for (let attempt = 0; ; attempt++) {
    if (before) {
      const waitFrom = Date.now();
      await before();
      deadline += Date.now() - waitFrom;
    }
    try {
      return await operation();
    } catch (error) {
      if (!isTransient(error) || Date.now() >= deadline) throw storeError(what, error);
      await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * 2 ** attempt)));
    }
  }
}
