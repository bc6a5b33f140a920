import { ErrorCode } from '../shared/protocol/errors.ts';
import type { TabStatus } from './messages.ts';

/**
 * What each refusal means to the person lending the tab, in words. A Record
 * over every code: a new ErrorCode does not compile until it is explained here.
 */
const WORDS: Record<ErrorCode, string> = {
  [ErrorCode.DecodeFailed]: 'the coordinator could not read what this tab sent',
  [ErrorCode.InvalidMessage]: 'a message from this tab was malformed',
  [ErrorCode.UnknownMessageType]: 'this tab sent a kind of message the coordinator does not know',
  [ErrorCode.ProtocolMismatch]: 'this page is older or newer than the coordinator: reload it',
  [ErrorCode.UnknownCodec]: 'this tab encoded its update in a way the coordinator does not know',
  [ErrorCode.UnknownModel]: 'the job trains a model this page does not know: reload it',
  [ErrorCode.UnknownJob]: 'there is no such job on this coordinator',
  [ErrorCode.InvalidConfig]: 'the job is configured wrongly',
  [ErrorCode.WrongRound]: 'your last update arrived late: the round had closed',
  [ErrorCode.StaleVersion]: 'your last update was computed on weights that had already moved on',
  [ErrorCode.NotAssigned]: 'the coordinator had given this tab no work in that round',
  [ErrorCode.DuplicateUpdate]: 'the coordinator had this update already',
  [ErrorCode.TensorMismatch]: 'your update did not have the shape the model needs',
  [ErrorCode.NonFinite]: 'your update held invalid numbers (NaN or infinity): this device may compute wrongly',
  [ErrorCode.NormTooLarge]: 'your update was far larger than the job allows',
  [ErrorCode.IncompleteMessage]: 'part of your update got lost on the way; it is being sent again',
  [ErrorCode.TooLarge]: 'a message from this tab was larger than the coordinator accepts',
  [ErrorCode.UnknownWeights]: 'the weights this tab asked for are gone; it will take the next ones',
  [ErrorCode.NotRegistered]: 'the coordinator had forgotten this tab (it restarted); joining again',
  [ErrorCode.Unauthorized]: 'this coordinator needs an invitation (a token) to join',
  [ErrorCode.JobNotRunning]: 'the job is paused or stopped and takes no work',
  [ErrorCode.BadCheckpoint]: 'the coordinator could not load the job from its checkpoint',
  [ErrorCode.RateLimited]: 'this tab sent faster than the coordinator allows; it slows down',
  [ErrorCode.NotReady]: 'what this tab asked for is not written yet; it will ask again later',
  [ErrorCode.UnknownWorker]: 'the coordinator knows no worker by that id',
  [ErrorCode.Internal]: 'something failed on the coordinator, not in this tab',
};

/** A refusal in words: what it means, then the coordinator's own detail. */
export function explainRefusal(code: string, detail?: string): string {
  const words = WORDS[code as ErrorCode] ?? `refused (${code})`;
  return detail ? `${words} (${detail})` : words;
}

/** True for a refusal that only says the update came too late to count. */
export function isLate(code: string): boolean {
  return code === ErrorCode.WrongRound;
}

/** The tab's state as a sentence: what it is doing now, in the words the page shows. */
export function describeState(status: Pick<TabStatus, 'state' | 'activity' | 'share'>): string {
  switch (status.state) {
    case 'starting':
      return 'starting';
    case 'calibrating':
      return 'measuring this device';
    case 'connecting':
      return 'connecting to the coordinator';
    case 'spectating':
      return 'watching: too slow to help this job right now';
    case 'paused':
      return 'paused';
    case 'stopped':
      return 'stopped';
    case 'refused':
      return 'refused';
    case 'training':
      switch (status.activity) {
        case 'computing':
          return `computing an update of ${status.share} samples`;
        case 'sent':
          return 'update sent, waiting for the coordinator to take it';
        case 'late':
          return WORDS[ErrorCode.WrongRound];
        case 'refused':
          return 'your last update was refused';
        case 'idle':
          return 'waiting: the job has no round open';
        default:
          return 'waiting for the next round';
      }
  }
}

/** `12.3 s`, `4 min 05 s`, `1 h 02 min`: time given, read at a glance. */
export function formatGivenTime(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(seconds / 3600)} h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')} min`;
}

/** A closed round as the job's event stream tells it (a subset of the coordinator's RoundRow). */
export interface RoundEvent {
  round: number;
  durationMs: number;
  updates: { workerId: string; samples: number }[];
}

/** One closed round in words, from this tab's side. */
export function describeRound(row: RoundEvent, workerId: string): string {
  const mine = workerId ? row.updates.find((update) => update.workerId === workerId) : undefined;
  const who = mine ? `yours among them (${mine.samples} samples)` : workerId ? 'none from this tab' : '';
  return `round ${row.round}: ${(row.durationMs / 1000).toFixed(2)} s, ${row.updates.length} update${row.updates.length === 1 ? '' : 's'}${who ? `, ${who}` : ''}`;
}
