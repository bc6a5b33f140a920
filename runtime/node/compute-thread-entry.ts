import { parentPort, workerData } from 'node:worker_threads';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { LocalCompute } from '../../shared/worker/compute.ts';
import { selectNodeBackend } from './backend.ts';
import { buffersOf, toWireError, type ThreadInit, type ThreadReply, type ThreadRequest } from './compute-thread.ts';
import { loadModelModules } from './model-modules.ts';

/** The compute thread (runtime/node/compute-thread.ts): chooses the tfjs backend here, then answers requests in order. */

const init = workerData as ThreadInit;
const port = parentPort!;
const reply = (message: ThreadReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

// A throttled step holds this thread for its extra time, as a slower device would; the worker's own thread goes on.
const held = new Int32Array(new SharedArrayBuffer(4));
const compute = new LocalCompute((ms) => void Atomics.wait(held, 0, 0, ms));

async function answer(request: ThreadRequest): Promise<void> {
  try {
    if (request.type === 'shapes') {
      const shapes = await compute.shapes(request.model, request.data);
      reply({ type: 'shapes', id: request.id, shapes, weightsHash: compute.weightsHash });
      return;
    }
    const { weights, ...rest } = request.request;
    if (!weights && compute.weightsHash !== rest.weightsHash)
      throw new TesseraError(ErrorCode.Internal, `the compute thread holds no weights ${rest.weightsHash} and was sent none`, { field: 'weightsHash' });
    const result = await compute.step({ ...rest, weights: weights ?? {} });
    reply({ type: 'step', id: request.id, result, weightsHash: compute.weightsHash }, buffersOf(result.grads));
  } catch (error) {
    reply({ type: 'error', id: request.id, error: toWireError(error), weightsHash: compute.weightsHash });
  }
}

/** Registers the model families and chooses the backend; false (and the error sent) when the thread cannot serve. */
async function prepare(): Promise<boolean> {
  try {
    await loadModelModules(init.modelModules, { admit: false });
    reply({ type: 'ready', backend: await selectNodeBackend(init.backend, { wasmThreads: init.wasmThreads }) });
    return true;
  } catch (error) {
    reply({ type: 'failed', error: toWireError(error) });
    return false;
  }
}

if (await prepare()) {
  let answered: Promise<void> = Promise.resolve();
  port.on('message', (request: ThreadRequest) => {
    answered = answered.then(() => answer(request));
  });
}
