import { splitDataset } from '../../shared/data/shards.ts';
import { buildClassifier } from '../../shared/eval/classifier.ts';
import { Evaluator, type EvaluatorOptions } from '../../shared/eval/evaluator.ts';
import type { LabelledImages } from '../../shared/eval/train-classifier.ts';
import { getEvalDataset } from './datasets.ts';
import { trainAndSave } from './train.ts';
import { cacheWeightsDir, classifierHash, COMMITTED_WEIGHTS_DIR, loadClassifierWeights, type ClassifierRecord } from './weights.ts';

/** The coordinator's defaults (job config dataset.heldOutFraction and training.seed): the split every job holds out. */
export const DEFAULT_HELD_OUT_FRACTION = 0.1;
export const DEFAULT_SPLIT_SEED = 1;

export interface LoadOptions extends EvaluatorOptions {
  heldOutFraction?: number;
  /** The split's seed (the job's training.seed). */
  seed?: number;
  /** Where trained-on-the-fly weights are read and written (default $TESSERA_CACHE/eval or ~/.cache/tessera/eval). */
  cacheDir?: string;
  /** Progress lines (default: stderr): said when weights must be trained first. */
  log?: (line: string) => void;
}

/** A dataset cut the coordinator's way: the training split the classifier learns from, and the held-out split it is scored on. */
export interface EvalSplit {
  dataset: string;
  train: LabelledImages;
  heldOut: LabelledImages;
}

/** The dataset's training and held-out splits for this fraction and seed. */
export function loadEvalSplit(datasetId: string, heldOutFraction = DEFAULT_HELD_OUT_FRACTION, seed = DEFAULT_SPLIT_SEED): EvalSplit {
  const data = getEvalDataset(datasetId).load();
  const split = splitDataset(data.count, heldOutFraction, seed);
  return { dataset: datasetId, train: data.batch(split.train), heldOut: data.batch(split.heldOut) };
}

/**
 * The evaluator of a dataset: its classifier from the committed or cached
 * weights (trained first, and cached, when neither matches the content hash
 * of the training split and config), and its held-out reference features.
 */
export async function loadEvaluator(datasetId: string, options: LoadOptions = {}): Promise<Evaluator> {
  const { classifier: config } = getEvalDataset(datasetId);
  const split = loadEvalSplit(datasetId, options.heldOutFraction, options.seed);
  const hash = classifierHash(datasetId, config, split.train);
  const cacheDir = options.cacheDir ?? cacheWeightsDir();
  let classifier = buildClassifier(config);
  let record: ClassifierRecord | undefined;
  try {
    record =
      (await loadClassifierWeights(COMMITTED_WEIGHTS_DIR, datasetId, hash, classifier)) ?? (await loadClassifierWeights(cacheDir, datasetId, hash, classifier));
  } catch (error) {
    classifier.dispose();
    throw error;
  }
  if (!record) {
    classifier.dispose();
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    log(
      `eval: no ${datasetId} classifier for hash ${hash.slice(0, 12)} (other data, split or config); training one into ${cacheDir} (about 2 minutes on one core)`,
    );
    ({ model: classifier } = await trainAndSave(split, config, hash, cacheDir, { log }));
  }
  return Evaluator.create({ dataset: datasetId, classifier, config, heldOut: split.heldOut, train: split.train }, options);
}
