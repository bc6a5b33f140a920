import { ErrorCode, TesseraError } from './errors.ts';

/**
 * NATS subject names, built here and nowhere else. The job id is a token of
 * every subject, so several jobs (and several coordinators) share one cluster.
 *
 *   tessera.<job>.in.<connection>    worker -> coordinator, one per worker connection
 *   tessera.<job>.out.<connection>   coordinator -> that worker
 *   tessera.<job>.broadcast          coordinator -> every worker (weights, once per version)
 */
export const SUBJECT_ROOT = 'tessera';

const TOKEN = /^[A-Za-z0-9_-]+$/;

function token(value: string, field: string): string {
  if (!TOKEN.test(value))
    throw new TesseraError(ErrorCode.InvalidConfig, `${JSON.stringify(value)} cannot be a NATS subject token (letters, digits, _ and - only)`, { field });
  return value;
}

export const subjects = {
  toCoordinator: (jobId: string, connectionId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.in.${token(connectionId, 'connectionId')}`,
  /** The wildcard the coordinator listens on for one job. */
  coordinatorInbox: (jobId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.in.*`,
  toWorker: (jobId: string, connectionId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.out.${token(connectionId, 'connectionId')}`,
  broadcast: (jobId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.broadcast`,
  /** The connection id in a subject the coordinator received on. */
  connectionOf: (subject: string) => subject.slice(subject.lastIndexOf('.') + 1),
};
