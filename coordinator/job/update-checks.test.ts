import { describe, expect, it } from 'vitest';
import { getCodec } from '../../shared/codec/index.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import { grads, makeJob, makeJobLike, rejection, update, workers } from './job-fixtures.ts';

describe('update checks', () => {
  it('rejects bad updates with a code and the field at fault, and the round still completes from the good ones', async () => {
    const job = makeJob();
    await job.openRound([...workers, { id: 'c', batchSize: 4 }], 0);
    const bad = (overrides: Partial<Update>, tensors?: NamedArrays) => rejection(() => job.acceptUpdate('zz', update(job, overrides, tensors), 1));
    // Checked with an unassigned worker first, then each field on an assigned one whose update is still to come.
    expect(bad({})).toEqual({ code: ErrorCode.NotAssigned, field: 'round' });

    const asB = (overrides: Partial<Update>, tensors?: NamedArrays) => {
      const fresh = makeJobLike(job);
      return rejection(() => fresh.acceptUpdate('b', update(fresh, overrides, tensors), 1));
    };
    expect(asB({ round: 7 })).toEqual({ code: ErrorCode.WrongRound, field: 'round' });
    expect(asB({ jobId: 'other' })).toEqual({ code: ErrorCode.UnknownJob, field: 'jobId' });
    expect(asB({ version: 3 })).toEqual({ code: ErrorCode.StaleVersion, field: 'version' });
    // The right version number but other weights: a gradient replayed from elsewhere is refused by its hash.
    expect(asB({ weightsHash: 'f'.repeat(64) })).toEqual({ code: ErrorCode.StaleVersion, field: 'weightsHash' });
    // Another batch of this round: an assignment made again after a restart, so late rather than false (no trust lost).
    expect(asB({ samples: 5 })).toEqual({ code: ErrorCode.WrongRound, field: 'samples' });
    expect(asB({ codec: 'zip' })).toEqual({ code: ErrorCode.UnknownCodec, field: 'codec' });
    expect(asB({ tensors: new Uint8Array([1, 2, 3]) }).code).toBe(ErrorCode.DecodeFailed);
    const onlyG = getCodec('f32').encode({ g_w: { dtype: 'float32', shape: [2, 3], data: grads().g_w } });
    expect(asB({ tensors: onlyG })).toEqual({ code: ErrorCode.TensorMismatch, field: 'tensors.d_w' });
    const nan = grads();
    nan.d_w[2] = Number.NaN;
    expect(asB({}, nan)).toEqual({ code: ErrorCode.NonFinite, field: 'tensors.d_w' });
    expect(asB({}, grads(1000))).toEqual({ code: ErrorCode.NormTooLarge, field: 'tensors' });
    const wrongShape = getCodec('f32').encode({
      g_w: { dtype: 'float32', shape: [3, 2], data: grads().g_w },
      d_w: { dtype: 'float32', shape: [4], data: grads().d_w },
    });
    expect(asB({ tensors: wrongShape })).toEqual({ code: ErrorCode.TensorMismatch, field: 'tensors.g_w.shape' });

    // In the real round: a accepted, b sends garbage, c a duplicate after its good one.
    job.acceptUpdate('a', update(job), 2);
    expect(rejection(() => job.acceptUpdate('b', update(job, { tensors: new Uint8Array(10) }), 3)).code).toBe(ErrorCode.DecodeFailed);
    job.acceptUpdate('c', update(job), 4);
    expect(rejection(() => job.acceptUpdate('c', update(job), 5))).toEqual({ code: ErrorCode.DuplicateUpdate, field: 'round' });
    // b's rejected update counts as its failure: the round does not wait for it.
    expect(job.roundComplete()).toBe(true);
    const summary = job.closeRound(6);
    expect(summary.updates.map((u) => u.workerId).sort()).toEqual(['a', 'c']);
    expect(summary.failures).toEqual([expect.objectContaining({ workerId: 'b', code: ErrorCode.DecodeFailed })]);
    expect(job.state.version).toBe(1);
  });
});
