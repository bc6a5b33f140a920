import { describe, expect, it } from 'vitest';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { parseJobConfig } from '../config.ts';
import { rejection, shapes, update, workers } from './job-fixtures.ts';
import { Job } from './job.ts';

describe('late updates', () => {
  function staleJob() {
    const config = parseJobConfig({
      id: 'unit',
      training: { batchSize: 4, lateUpdates: 'stale', stalenessDecay: 0.5, maxStaleness: 1 },
      dataset: { shards: 4 },
    });
    const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([1, 1, 1, 1]) };
    return new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
  }

  it('applies an update that missed its round in the next one, discounted per version behind, and only once', async () => {
    const job = staleJob();
    await job.openRound(workers, 0);
    const lateOne = update(job);
    job.acceptUpdate('a', update(job), 1);
    job.closeRound(2);
    await job.openRound(workers, 2);
    // What the examples route still serves b: the indices of the round it missed.
    expect(job.missedAssignments('b').map((assignment) => assignment.message.round)).toEqual([0]);
    expect(job.missedAssignments('a')).toEqual([]);
    const taken = job.acceptUpdate('b', lateOne, 3);
    expect(taken).toMatchObject({ round: 0, samples: 4, weight: 2 });
    expect(job.missedAssignments('b')).toEqual([]);
    expect(rejection(() => job.acceptUpdate('b', lateOne, 4))).toEqual({ code: ErrorCode.WrongRound, field: 'round' });
    job.acceptUpdate('a', update(job), 5);
    const summary = job.closeRound(6);
    expect(summary.late.map((u) => u.workerId)).toEqual(['b']);
    // b's own round-1 share is still missing: it is a failure of round 1, not filled by the late update.
    expect(summary.failures.map((f) => f.workerId)).toEqual(['b']);
  });

  it('drops one older than maxStaleness', async () => {
    const job = staleJob();
    await job.openRound(workers, 0);
    const lateOne = update(job);
    job.acceptUpdate('a', update(job), 1);
    job.closeRound(2);
    for (let round = 1; round <= 2; round++) {
      await job.openRound(workers, 10 * round);
      job.acceptUpdate('a', update(job), 10 * round + 1);
      if (round < 2) job.closeRound(10 * round + 2);
    }
    expect(rejection(() => job.acceptUpdate('b', lateOne, 30))).toEqual({ code: ErrorCode.StaleVersion, field: 'version' });
  });

  it('never places a copy late: its samples would count twice', async () => {
    const config = parseJobConfig({ id: 'unit', training: { batchSize: 4, lateUpdates: 'stale' }, dataset: { shards: 4 } });
    const job = new Job(config, shapes, Job.initialState(dcgan, { g_w: new Float32Array(6), d_w: new Float32Array(4) }, 4), 100);
    await job.openRound(workers, 0, 1000, new Map([['b', 'a']]));
    const lateCopy = update(job);
    job.acceptUpdate('a', update(job), 1);
    job.closeRound(2);
    await job.openRound(workers, 3);
    expect(rejection(() => job.acceptUpdate('b', lateCopy, 4))).toEqual({ code: ErrorCode.WrongRound, field: 'round' });
  });
});
