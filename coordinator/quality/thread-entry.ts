import { parentPort } from 'node:worker_threads';
import { getModel } from '../../shared/models/registry.ts';
import type { ModelSpec, Trainer } from '../../shared/models/types.ts';
import { selectNodeBackend } from '../../runtime/node/backend.ts';
import type { Evaluator } from '../../shared/eval/evaluator.ts';
import { loadEvaluator } from './load.ts';
import type { ScoreReply, ScoreRequest } from './thread-protocol.ts';

/*
 * The scoring thread: its own tfjs on the wasm backend (one thread in Node),
 * so sampling 500 images and running the classifier never holds up the
 * coordinator's event loop. It keeps the evaluator and the job's model
 * between requests, and scores one request at a time.
 */

const port = parentPort;
if (!port) throw new Error('coordinator/quality/thread-entry.ts runs in a worker_thread (coordinator/quality/scoring-thread.ts starts it)');

const ready = selectNodeBackend('wasm');
let evaluator: { key: string; value: Promise<Evaluator> } | undefined;
let model: { key: string; spec: ModelSpec<any>; trainer: Trainer } | undefined;

/** The evaluator of the request's dataset and split, loaded once (its classifier and reference features take seconds). */
function evaluatorFor(request: ScoreRequest): Promise<Evaluator> {
  const { id, heldOutFraction, splitSeed } = request.dataset;
  const key = JSON.stringify([id, heldOutFraction, splitSeed]);
  if (evaluator?.key !== key) {
    void evaluator?.value.then(
      (previous) => previous.dispose(),
      () => undefined,
    );
    const entry = { key, value: loadEvaluator(id, { heldOutFraction, seed: splitSeed }) };
    evaluator = entry;
    // A failed load is tried again at the next request (a classifier file written meanwhile, say).
    entry.value.catch(() => {
      if (evaluator === entry) evaluator = undefined;
    });
  }
  return evaluator.value;
}

/** A trainer of the request's model, built once per model config. */
function modelFor(request: ScoreRequest): { spec: ModelSpec<any>; trainer: Trainer } {
  const key = JSON.stringify([request.model.id, request.model.config]);
  if (model?.key !== key) {
    model?.trainer.dispose();
    const spec = getModel(request.model.id);
    model = { key, spec, trainer: spec.createTrainer(spec.parseConfig(request.model.config)) };
  }
  return model;
}

async function score(request: ScoreRequest): Promise<ScoreReply> {
  try {
    await ready;
    const scorer = await evaluatorFor(request);
    const { spec, trainer } = modelFor(request);
    trainer.setWeights(request.weights);
    const report = await scorer.scoreTrainer(trainer, spec, request.count, request.seed);
    return { type: 'scored', id: request.id, report };
  } catch (error) {
    return { type: 'failed', id: request.id, message: (error as Error).message ?? String(error) };
  }
}

// One at a time: the coordinator sends the next request only after an answer, and this chain holds if it ever does not.
let queue = Promise.resolve();
port.on('message', (request: ScoreRequest) => {
  queue = queue.then(async () => port.postMessage(await score(request)));
});
