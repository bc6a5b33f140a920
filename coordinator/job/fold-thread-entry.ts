import { parentPort } from 'node:worker_threads';
import { SimdArena, simdArena } from '../../shared/aggregate/simd.ts';
import { elementCount } from '../../shared/codec/tensor-wire.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { ErrorCode, isTesseraError } from '../../shared/protocol/errors.ts';
import type { FoldReply, FoldRequest } from './fold-protocol.ts';
import { foldUpdate, openFold, type RoundFold } from './round-fold.ts';
import { checkTensors } from './update-checks.ts';

/*
 * The fold thread: decodes each update's tensors, checks them (finite, norm
 * under the job's limit) and folds them into its StreamingMeans for the
 * round, as Job.acceptUpdate does on the event loop for a smaller round. At
 * the round's close it hands its means' state and held updates back
 * (coordinator/job/fold-thread.ts merges them). One round at a time.
 */

const port = parentPort;
if (!port) throw new Error('coordinator/job/fold-thread-entry.ts runs in a worker_thread (coordinator/job/fold-thread.ts starts it)');

let open: { round: number; fold: RoundFold; rules: { shapes: Record<string, number[]>; maxGradNorm: number }; scratch: NamedArrays } | undefined;

/** The WebAssembly SIMD memory the round's scratch and sums live in (undefined without SIMD: plain arrays then). */
const arena = simdArena();

/**
 * Where a round's updates are decoded: one array per tensor of the model,
 * reused from update to update (a fold reads an update's values once; the
 * means copy an update they hold). Allocating each update's tensors afresh
 * took most of the thread's time with hundreds of workers. With the means'
 * sums, in the arena: the sums of squares and the scaled adds run there.
 */
function scratchFor(shapes: Record<string, number[]>): NamedArrays {
  const lengths = Object.entries(shapes).map(([name, shape]) => [name, elementCount(shape)] as const);
  // Room for the scratch and for the means' sums, of the same lengths (openFold's allocate below).
  const sizes = lengths.map(([, length]) => length);
  arena?.reserve(SimdArena.bytesFor(sizes, sizes));
  return Object.fromEntries(lengths.map(([name, length]) => [name, arena ? arena.float32(length) : new Float32Array(length)]));
}

function reply(message: FoldReply, transfer: ArrayBuffer[] = []): void {
  // A check's bytes given back move with its answer.
  if ((message.type === 'checked' || message.type === 'refused') && message.spent) transfer = [message.spent.buffer as ArrayBuffer];
  port!.postMessage(message, transfer);
}

port.on('message', (request: FoldRequest) => {
  switch (request.type) {
    case 'open': {
      const { round, shapes, networkOf, assigned, options, maxGradNorm } = request;
      const scratch = scratchFor(shapes);
      const fold = openFold(shapes, (name) => networkOf[name], new Map(assigned), options, new Map(), arena && ((length) => arena.float64(length)));
      open = { round, fold, rules: { shapes, maxGradNorm }, scratch };
      return;
    }
    case 'check': {
      const { round, workerId, bytes } = request;
      // A copy's buffer goes back with the answer, for the coordinator to copy the next update into; a worker's message
      // the coordinator handed over stays here, garbage of this thread's heap instead of the event loop's.
      const back = request.giveBack ? { spent: bytes } : {};
      if (open?.round !== round) {
        reply({ type: 'refused', round, workerId, code: ErrorCode.Internal, message: `the fold thread has no round ${round} open`, ...back });
        return;
      }
      try {
        const { grads, squares } = checkTensors(open.rules, request.codec, bytes, open.scratch);
        foldUpdate(open.fold, { workerId, round, grads, squares }, true);
        reply({ type: 'checked', round, workerId, ...back });
      } catch (error) {
        if (isTesseraError(error)) {
          const field = error.field === undefined ? {} : { field: error.field };
          reply({ type: 'refused', round, workerId, code: error.code, message: error.detail, ...field, ...back });
        } else reply({ type: 'refused', round, workerId, code: ErrorCode.Internal, message: (error as Error).message ?? String(error), ...back });
      }
      return;
    }
    case 'close': {
      const { round } = request;
      if (open?.round !== round) {
        reply({ type: 'failed', round, message: `the fold thread has no round ${round} open` });
        return;
      }
      const { fold } = open;
      open = undefined;
      // Sums in the arena are copied out: a WebAssembly memory cannot be moved to another thread.
      const states = Object.fromEntries(
        Object.entries(fold.means).map(([network, mean]) => {
          const state = mean.state();
          const sums = arena ? Object.fromEntries(Object.entries(state.sums).map(([name, sum]) => [name, sum.slice()])) : state.sums;
          return [network, { ...state, sums }];
        }),
      );
      const held = Object.fromEntries(Object.entries(fold.means).map(([network, mean]) => [network, mean.takeHeld()]));
      // The sums and the held tensors move back rather than being copied: this fold is done with them.
      const transfer = [
        ...Object.values(states).flatMap((state) => Object.values(state.sums).map((sum) => sum.buffer as ArrayBuffer)),
        ...Object.values(held).flatMap((updates) => updates.flatMap((update) => Object.values(update.tensors).map((array) => array.buffer as ArrayBuffer))),
      ];
      reply({ type: 'closed', round, states, held, outliers: fold.outliers }, [...new Set(transfer)]);
      return;
    }
  }
});
