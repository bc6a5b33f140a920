import { encodeWithFeedback } from '../codec/error-feedback.ts';
import type { NamedArrays, TensorCodec } from '../codec/types.ts';

/**
 * A worker's error-feedback state for its job (training.errorFeedback, sync mode): the residual per tensor
 * (shared/codec/error-feedback.ts for the maths) and when it starts over.
 *
 * - It is reset when the codec or a tensor's shape changes (the residual is a rounding error of that codec for those
 *   shapes) and at every welcome: a rejoined worker may find the coordinator restarted from a checkpoint.
 * - The residual an update leaves is pending until the coordinator answers. An ack keeps it, and so does
 *   DUPLICATE_UPDATE (the coordinator holds the first copy of a resent update). Any other refusal drops it, and the
 *   residual the refused update carried is carried again into the next: the refused gradient is lost as a missed round
 *   is, the error owed from earlier rounds is not.
 * - An answer that comes only after the next update was encoded changes nothing: that update took the pending residual
 *   as kept. An update that counts as a verification copy is acknowledged like any other (the worker must not tell).
 */
export class ErrorFeedback {
  private codecId: string | undefined;
  private shapes: Record<string, number[]> | undefined;
  private committed: NamedArrays = {};
  private pending: { round: number; residuals: NamedArrays } | undefined;
  /** Tensors encoded, and how many of them had their carried residual shortened to the gradient's bound (benches report it). */
  readonly counts = { tensors: 0, shortened: 0 };

  /** The bytes of round `round`'s update: `grads` plus the residual carried so far, by `codec`. */
  encode(codec: TensorCodec, grads: NamedArrays, shapes: Record<string, number[]>, round: number): Uint8Array {
    if (codec.id !== this.codecId || !sameShapes(shapes, this.shapes)) {
      this.reset();
      this.codecId = codec.id;
      this.shapes = shapes;
    }
    if (this.pending) this.committed = this.pending.residuals;
    const step = encodeWithFeedback(codec, grads, this.committed, shapes);
    this.counts.tensors += Object.keys(shapes).length;
    this.counts.shortened += step.shortened.length;
    this.pending = { round, residuals: step.residuals };
    return step.bytes;
  }

  /** The coordinator took round `round`'s update. */
  accepted(round: number): void {
    if (this.pending?.round !== round) return;
    this.committed = this.pending.residuals;
    this.pending = undefined;
  }

  /** The coordinator refused round `round`'s update. */
  refused(round: number): void {
    if (this.pending?.round === round) this.pending = undefined;
  }

  reset(): void {
    this.codecId = undefined;
    this.shapes = undefined;
    this.committed = {};
    this.pending = undefined;
  }

  /** The residual the next update will carry for `tensor` (zero-length when none). */
  residual(tensor: string): Float32Array {
    return (this.pending?.residuals ?? this.committed)[tensor] ?? new Float32Array(0);
  }
}

function sameShapes(a: Record<string, number[]>, b: Record<string, number[]> | undefined): boolean {
  if (!b) return false;
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  return names.every((name) => b[name]?.length === a[name].length && a[name].every((size, i) => size === b[name][i]));
}
