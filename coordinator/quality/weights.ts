import { tesseraCacheDir } from '../../runtime/node/cache.ts';
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClassifierConfig } from '../../shared/eval/classifier.ts';
import type { LabelledImages } from '../../shared/eval/train-classifier.ts';
import { writeFileAtomic } from '../outputs.ts';

/** Bumped when the stored layout or the training procedure changes: old weights then no longer match. */
export const CLASSIFIER_FORMAT = 'tessera-eval-classifier';
export const CLASSIFIER_FORMAT_VERSION = 1;

/** Weights committed with the code: a clean clone scores without training. */
export const COMMITTED_WEIGHTS_DIR = fileURLToPath(new URL('./weights/', import.meta.url));

/** Where weights trained on the fly go: $TESSERA_CACHE/eval, else ~/.cache/tessera/eval. */
export function cacheWeightsDir(env: NodeJS.ProcessEnv = process.env): string {
  return tesseraCacheDir('eval', env);
}

/** What sits beside the weights: enough to know what they are and how they were made. */
export interface ClassifierRecord {
  format: string;
  formatVersion: number;
  dataset: string;
  /** sha256 of the format, the config and the training split (images and labels, in split order). */
  hash: string;
  config: ClassifierConfig;
  tensors: { name: string; shape: number[] }[];
  heldOutAccuracy: number;
  trainingSeconds: number;
  backend: string;
  command: string;
  trainedAt: string;
}

/** The content hash that names a classifier: any change to the data, the config or the format gives another. */
export function classifierHash(dataset: string, config: ClassifierConfig, train: LabelledImages): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ format: CLASSIFIER_FORMAT, formatVersion: CLASSIFIER_FORMAT_VERSION, dataset, config: sortedKeys(config) }));
  hash.update(new Uint8Array(train.labels.buffer, train.labels.byteOffset, train.labels.byteLength));
  hash.update(new Uint8Array(train.images.buffer, train.images.byteOffset, train.images.byteLength));
  return hash.digest('hex');
}

/** File stem of a classifier's weights: `mnist-<first 12 hex digits of the hash>`. */
export function weightsStem(dataset: string, hash: string): string {
  return `${dataset}-${hash.slice(0, 12)}`;
}

/** Writes the weights (`<stem>.bin`, float32 in the model's weight order) and the record (`<stem>.json`). */
export async function saveClassifier(
  dir: string,
  model: tf.LayersModel,
  record: Omit<ClassifierRecord, 'format' | 'formatVersion' | 'tensors'>,
): Promise<string> {
  const stem = weightsStem(record.dataset, record.hash);
  const tensors = model.weights.map((weight) => ({ name: weight.originalName, shape: weight.shape.slice() as number[] }));
  const total = tensors.reduce((sum, { shape }) => sum + shape.reduce((a, b) => a * b, 1), 0);
  const values = new Float32Array(total);
  let offset = 0;
  for (const weight of model.weights) {
    const data = weight.read().dataSync() as Float32Array;
    values.set(data, offset);
    offset += data.length;
  }
  const full: ClassifierRecord = { format: CLASSIFIER_FORMAT, formatVersion: CLASSIFIER_FORMAT_VERSION, ...record, tensors };
  await writeFileAtomic(join(dir, `${stem}.bin`), new Uint8Array(values.buffer));
  await writeFileAtomic(join(dir, `${stem}.json`), `${JSON.stringify(full, null, 2)}\n`);
  return join(dir, stem);
}

/**
 * Reads the weights of the classifier with this hash from `dir` into
 * `model`; undefined when the folder holds none with that hash. Throws when
 * the files exist but do not fit the model (a corrupt or hand-edited file).
 */
export async function loadClassifierWeights(dir: string, dataset: string, hash: string, model: tf.LayersModel): Promise<ClassifierRecord | undefined> {
  const stem = join(dir, weightsStem(dataset, hash));
  let recordText: string;
  let bytes: Buffer;
  try {
    [recordText, bytes] = await Promise.all([readFile(`${stem}.json`, 'utf8'), readFile(`${stem}.bin`)]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const record = JSON.parse(recordText) as ClassifierRecord;
  if (record.hash !== hash) return undefined;
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const weights = model.weights;
  const expected = weights.map((weight) => `${weight.originalName}:${weight.shape.join('x')}`).join(',');
  const stored = record.tensors.map(({ name, shape }) => `${name}:${shape.join('x')}`).join(',');
  if (expected !== stored) throw new Error(`${stem}.json: tensors ${stored} do not fit the classifier's ${expected}`);
  const total = record.tensors.reduce((sum, { shape }) => sum + shape.reduce((a, b) => a * b, 1), 0);
  if (values.length !== total) throw new Error(`${stem}.bin: ${values.length} values, the record names ${total}`);
  let offset = 0;
  const tensors = weights.map((weight) => {
    const size = weight.shape.reduce((a: number, b) => a * (b as number), 1);
    // A copy: the cpu backend would otherwise keep this view of the file's buffer as its storage.
    const tensor = tf.tensor(values.slice(offset, offset + size), weight.shape as number[]);
    offset += size;
    return tensor;
  });
  model.setWeights(tensors);
  tf.dispose(tensors);
  return record;
}

function sortedKeys(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)));
}
