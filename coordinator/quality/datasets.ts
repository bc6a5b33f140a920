import type { InMemoryDataset } from '../../shared/data/dataset.ts';
import { loadMnist } from '../../shared/data/mnist.ts';
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
  if (!dataset) throw new TesseraError(ErrorCode.InvalidConfig, `no evaluator for dataset ${JSON.stringify(id)}; known: ${[...datasets.keys()].join(', ')}`, { field });
  return dataset;
}

export function listEvalDatasets(): EvalDataset[] {
  return [...datasets.values()];
}

registerEvalDataset({ id: 'mnist', load: loadMnist, classifier: DEFAULT_CLASSIFIER_CONFIG });
