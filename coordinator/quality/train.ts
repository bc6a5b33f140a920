import * as tf from '@tensorflow/tfjs';
import type { ClassifierConfig } from '../../shared/eval/classifier.ts';
import { accuracy, trainClassifier } from '../../shared/eval/train-classifier.ts';
import type { EvalSplit } from './load.ts';
import { saveClassifier, type ClassifierRecord } from './weights.ts';

/** How the committed weights are remade; written into the record beside them. */
export const TRAIN_COMMAND = 'npm run eval -- --train mnist';

/**
 * Trains the dataset's classifier on its training split (never the held-out
 * one), measures its held-out accuracy and writes weights and record to `dir`.
 */
export async function trainAndSave(
  split: EvalSplit,
  config: ClassifierConfig,
  hash: string,
  dir: string,
  options: { log?: (line: string) => void; command?: string } = {},
): Promise<{ model: tf.LayersModel; record: Omit<ClassifierRecord, 'format' | 'formatVersion' | 'tensors'>; path: string }> {
  const started = performance.now();
  const model = await trainClassifier(config, split.train, {
    onEpoch: (epoch, loss) =>
      options.log?.(
        `eval: ${split.dataset} classifier epoch ${epoch + 1}/${config.epochs}, loss ${loss.toFixed(4)}, ${((performance.now() - started) / 1000).toFixed(0)} s`,
      ),
  });
  const trainingSeconds = (performance.now() - started) / 1000;
  const heldOutAccuracy = await accuracy(model, split.heldOut);
  const record = {
    dataset: split.dataset,
    hash,
    config,
    heldOutAccuracy,
    trainingSeconds: Math.round(trainingSeconds * 10) / 10,
    backend: tf.getBackend(),
    command: options.command ?? TRAIN_COMMAND.replace('mnist', split.dataset),
    trainedAt: new Date().toISOString(),
  };
  const path = await saveClassifier(dir, model, record);
  options.log?.(
    `eval: ${split.dataset} classifier: held-out accuracy ${(heldOutAccuracy * 100).toFixed(2)}%, trained in ${trainingSeconds.toFixed(0)} s; weights in ${path}.bin`,
  );
  return { model, record, path };
}
