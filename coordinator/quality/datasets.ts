import type { InMemoryDataset } from '../../shared/data/dataset.ts';
import { loadDataset } from '../../runtime/node/datasets.ts';
import { DEFAULT_CLASSIFIER_CONFIG, type ClassifierConfig } from '../../shared/eval/classifier.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

/** A dataset the evaluator can score against: how to load it and the classifier that judges it. */
export interface EvalDataset {
  id: string;
  load(): InMemoryDataset;
  classifier: ClassifierConfig;
}

const datasets = new Map<string, EvalDataset>();

/** Enrols a dataset under its id (the job config's dataset.id); a duplicate id is a programming error. */
export function registerEvalDataset(dataset: EvalDataset): void {
  if (datasets.has(dataset.id)) throw new Error(`evaluation dataset ${dataset.id} is registered already`);
  datasets.set(dataset.id, dataset);
}

/** The evaluation dataset for an id, or an InvalidConfig error naming the field. */
export function getEvalDataset(id: string, field = 'dataset.id'): EvalDataset {
  const dataset = datasets.get(id);
  if (!dataset)
    throw new TesseraError(ErrorCode.InvalidConfig, `no evaluator for dataset ${JSON.stringify(id)}; known: ${[...datasets.keys()].join(', ')}`, { field });
  return dataset;
}

/** Whether a dataset has an evaluator (a classifier trained on it): only those are scored during training. */
export function hasEvalDataset(id: string): boolean {
  return datasets.has(id);
}

export function listEvalDatasets(): EvalDataset[] {
  return [...datasets.values()];
}

registerEvalDataset({ id: 'mnist', load: () => loadDataset('mnist'), classifier: DEFAULT_CLASSIFIER_CONFIG });
// Fashion-MNIST: the same classifier, 2 epochs over its 63,000 training images (as many steps as 14 epochs of
// MNIST's 9,000), trained on first use and cached. Clothes are harder to tell apart: real held-out images are
// less often above 0.9 confidence than digits, which is why every report prints the real data's figures beside.
registerEvalDataset({ id: 'fashion-mnist', load: () => loadDataset('fashion-mnist'), classifier: { ...DEFAULT_CLASSIFIER_CONFIG, epochs: 2 } });
