import { describe, expect, it } from 'vitest';
import { getCodec } from '../codec/index.ts';
import { ErrorFeedback } from './error-feedback.ts';

const int8 = getCodec('int8');
const shapes = { w: [256] };
/** A gradient int8 cannot send exactly: 0.003 beside a 1 rounds to 0 (a step of 1/127), leaving a residual of 0.003. */
const grads = { w: Float32Array.from({ length: 256 }, (_, i) => (i === 0 ? 1 : 0.003)) };
const residualAt = (feedback: ErrorFeedback) => feedback.residual('w')[1];

describe('ErrorFeedback (a worker’s residuals)', () => {
  it('carries the residual of an acknowledged update into the next', () => {
    const feedback = new ErrorFeedback();
    feedback.encode(int8, grads, shapes, 0);
    expect(residualAt(feedback)).toBeCloseTo(0.003, 6);
    feedback.accepted(0);
    feedback.encode(int8, grads, shapes, 1);
    // 0.006 is past half a step (0.0039): it goes as one step, 1/127, and leaves 0.006 - 1/127.
    expect(residualAt(feedback)).toBeCloseTo(0.006 - 1 / 127, 5);
  });

  it('drops what a refused update left and carries the earlier residual again', () => {
    const feedback = new ErrorFeedback();
    feedback.encode(int8, grads, shapes, 0);
    feedback.accepted(0);
    feedback.encode(int8, grads, shapes, 1);
    feedback.refused(1);
    expect(residualAt(feedback)).toBeCloseTo(0.003, 6);
    // An answer for another round changes nothing.
    feedback.encode(int8, grads, shapes, 2);
    feedback.refused(1);
    expect(residualAt(feedback)).toBeCloseTo(0.006 - 1 / 127, 5);
  });

  it('takes an unanswered update as kept when the next is encoded, and ignores a refusal that comes after', () => {
    const feedback = new ErrorFeedback();
    feedback.encode(int8, grads, shapes, 0);
    feedback.encode(int8, grads, shapes, 1);
    feedback.refused(0);
    expect(residualAt(feedback)).toBeCloseTo(0.006 - 1 / 127, 5);
  });

  it('starts over when the codec or a shape changes, or on reset (a rejoin)', () => {
    const feedback = new ErrorFeedback();
    feedback.encode(int8, grads, shapes, 0);
    feedback.accepted(0);
    feedback.encode(getCodec('f16'), grads, shapes, 1);
    // f16 sends 0.003 to within 2^-11 of it: nothing of int8's 0.003 came along.
    expect(Math.abs(residualAt(feedback))).toBeLessThan(0.003 * 2 ** -10);
    feedback.accepted(1);

    const wider = { w: Float32Array.from({ length: 512 }, (_, i) => (i === 0 ? 1 : 0.003)) };
    feedback.encode(int8, grads, shapes, 2);
    feedback.accepted(2);
    feedback.encode(int8, wider, { w: [512] }, 3);
    expect(residualAt(feedback)).toBeCloseTo(0.003, 6);
    feedback.accepted(3);
    feedback.encode(int8, wider, { w: [2, 256] }, 4);
    expect(residualAt(feedback)).toBeCloseTo(0.003, 6);

    feedback.reset();
    expect(feedback.residual('w')).toHaveLength(0);
    feedback.encode(int8, grads, shapes, 5);
    expect(residualAt(feedback)).toBeCloseTo(0.003, 6);
  });
});
