import { ErrorCode, TesseraError } from './errors.ts';

/**
 * NATS subject names, built here and nowhere else. The job id is a token of
 * every subject, so several jobs (and several coordinators) share one cluster.
 *
 *   tessera.<job>.in.<connection>    worker -> coordinator, one per worker connection
 *   tessera.<job>.out.<connection>   coordinator -> that worker
 *   tessera.<job>.broadcast          coordinator -> every worker (weights, once per version)
 *
 * With aggregators (aggregator/, docs/aggregators.md) the
 * workers' subjects stay as they are; these are between the coordinator and
 * the aggregators only:
 *
 *   tessera.<job>.relay.<connection>            aggregator -> coordinator: a worker's message passed on, read as if on in.<connection>
 *   tessera.<job>.agg.hello                     aggregator -> coordinator: presence, every second
 *   tessera.<job>.agg.plan                      coordinator -> aggregators: each round's assignments and who owns which worker
 *   tessera.<job>.agg.partial.<aggregator>      aggregator -> coordinator: one partial sum per round
 *   tessera.<job>.agg.frames.<aggregator>.<connection>   aggregator -> aggregator: a worker's frame passed to the aggregator owning it
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
  /**
   * The queue group on coordinatorInbox: the coordinator is its only member
   * while no aggregator runs, the aggregators its members while any does, so
   * each frame a worker sends reaches exactly one of them.
   */
  inboxQueue: (jobId: string) => `${SUBJECT_ROOT}-${token(jobId, 'jobId')}-in`,
  relay: (jobId: string, connectionId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.relay.${token(connectionId, 'connectionId')}`,
  relayInbox: (jobId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.relay.*`,
  aggregatorHello: (jobId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.agg.hello`,
  aggregatorPlan: (jobId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.agg.plan`,
  partial: (jobId: string, aggregatorId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.agg.partial.${token(aggregatorId, 'aggregatorId')}`,
  partialInbox: (jobId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.agg.partial.*`,
  ownerFrames: (jobId: string, aggregatorId: string, connectionId: string) =>
    `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.agg.frames.${token(aggregatorId, 'aggregatorId')}.${token(connectionId, 'connectionId')}`,
  ownerInbox: (jobId: string, aggregatorId: string) => `${SUBJECT_ROOT}.${token(jobId, 'jobId')}.agg.frames.${token(aggregatorId, 'aggregatorId')}.*`,
  /** The connection id (the last token) in a subject the coordinator or an aggregator received on. */
  connectionOf: (subject: string) => subject.slice(subject.lastIndexOf('.') + 1),
};
