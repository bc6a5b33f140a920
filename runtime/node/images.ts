import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InMemoryDataset } from '../../shared/data/dataset.ts';
import type { DatasetSource, DatasetSpec } from '../../shared/data/registry.ts';
import { fromBytes, resizeImage, toBytes } from '../../shared/data/resize.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { tesseraCacheDir } from './cache.ts';
import { decodeImage, isImageFile } from './images-decode.ts';

/** Bumped when the cache file's layout or the resampling changes: part of the content hash, so an old file is never misread. */
const FORMAT = 1;
/** The shape images are resized to when dataset.shape is not given. */
export const DEFAULT_SHAPE: [number, number, number] = [32, 32, 3];
/**
 * At most 2^28 pixel values in memory (1 GiB as float32, which every process
 * holding the dataset keeps): 87,000 images at 32x32x3, 16,000 at 64x64x3.
 */
export const MAX_VALUES = 2 ** 28;

/** A folder of images as the dataset sees it: class names (sorted subfolders, or none) and every image with its label. */
export interface ImageFolder {
  root: string;
  classNames: string[];
  files: { path: string; label: number }[];
}

const refuse = (message: string, field = 'dataset.path') => new TesseraError(ErrorCode.InvalidConfig, message, { field });
/** Code-point order, the same on every machine whatever its locale. */
const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Lists an images folder: one subfolder per class (classes = the subfolders'
 * names, sorted), or the images directly in it (unlabelled). Hidden entries
 * and files that are not PNG or JPEG are skipped; a folder with both images
 * and class subfolders at the top, an empty class or no image at all is
 * refused, naming dataset.path.
 */
export function listImageFolder(path: string | undefined): ImageFolder {
  if (!path) throw refuse('dataset images reads a folder: set dataset.path to a folder of PNG/JPEG files (one subfolder per class, or none)');
  const root = resolve(path);
  const entries = (() => {
    try {
      return readdirSync(root, { withFileTypes: true });
    } catch (error) {
      throw refuse(`cannot read the folder ${root}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  })();
  const classNames = entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort(byCodePoint);
  const topImages = entries
    .filter((entry) => entry.isFile() && isImageFile(entry.name))
    .map((entry) => entry.name)
    .sort(byCodePoint);
  if (classNames.length === 0) {
    if (topImages.length === 0) throw refuse(`${root} holds no PNG or JPEG file and no class subfolder`);
    return { root, classNames, files: topImages.map((name) => ({ path: name, label: -1 })) };
  }
  if (topImages.length > 0) {
    throw refuse(
      `${root} holds both images (${topImages[0]}, ...) and class subfolders (${classNames[0]}, ...): move the images into a class, or the classes out`,
    );
  }
  const files = classNames.flatMap((className, label) => {
    const names = readdirSync(join(root, className), { withFileTypes: true })
      .filter((entry) => entry.isFile() && isImageFile(entry.name))
      .map((entry) => entry.name)
      .sort(byCodePoint);
    if (names.length === 0) throw refuse(`class folder ${join(root, className)} holds no PNG or JPEG file`);
    return names.map((name) => ({ path: join(className, name), label }));
  });
  return { root, classNames, files };
}

/** The spec of an images source as this folder makes it: the shape asked for, its classes and its count. */
export function describeImages(source: DatasetSource): DatasetSpec {
  const folder = listImageFolder(source.path);
  const imageShape = [...(source.shape ?? DEFAULT_SHAPE)] as [number, number, number];
  const values = folder.files.length * imageShape[0] * imageShape[1] * imageShape[2];
  if (values > MAX_VALUES) {
    throw refuse(
      `${folder.files.length} images of ${imageShape.join('x')} are ${values} pixel values, more than ${MAX_VALUES}: ` +
        'use fewer images or a smaller dataset.shape',
    );
  }
  return {
    id: 'images',
    description:
      `${folder.files.length} images from ${folder.root}, ` +
      `${folder.classNames.length ? `${folder.classNames.length} classes` : 'unlabelled'}, resized to ${imageShape.join('x')}`,
    imageShape,
    classes: folder.classNames.length,
    classNames: folder.classNames,
    count: folder.files.length,
    folder: true,
  };
}

/** By folder and shape: the listing last read and its dataset (one entry each, replaced when the folder changes). */
const loaded = new Map<string, { listing: string; dataset: InMemoryDataset }>();

/**
 * The images of a source, converted once per content (see readImageFolder)
 * and read once per process while the folder's listing (names, sizes,
 * modification times) stays the same: a long-running coordinator that opens
 * another job after the folder changed reads it again.
 */
export function loadImages(source: DatasetSource): InMemoryDataset {
  const shape = [...(source.shape ?? DEFAULT_SHAPE)] as [number, number, number];
  const folder = listImageFolder(source.path);
  const listing = folder.files.map((file) => {
    const stat = statSync(join(folder.root, file.path));
    return `${file.label}\0${file.path}\0${stat.size}\0${stat.mtimeMs}`;
  });
  const key = `${resolve(source.path ?? '')}\0${shape.join('x')}`;
  const known = loaded.get(key);
  if (known?.listing === listing.join('\n')) return known.dataset;
  const { dataset } = readImageFolder(source.path, shape, tesseraCacheDir('datasets'));
  loaded.set(key, { listing: listing.join('\n'), dataset });
  return dataset;
}

/**
 * An images folder as a dataset, in a fixed order (class by class, files by
 * name), so every process agrees on what index i is. Decoding and resizing
 * thousands of files takes seconds, so the first load writes a binary file
 * (every label as int32, then every pixel as one byte) named by the sha256 of
 * the format, the shape and each file's class, name and bytes; later loads
 * hash the files and read it. Changing a file, adding one or asking for
 * another shape makes a new file.
 */
export function readImageFolder(
  path: string | undefined,
  shape: [number, number, number],
  cacheDir: string,
): { dataset: InMemoryDataset; path: string; converted: boolean; hash: string } {
  const folder = listImageFolder(path);
  const pixels = shape[0] * shape[1] * shape[2];
  const hash = createHash('sha256').update(`tessera-images-v${FORMAT}\n${shape.join('x')}\n`);
  const sources = folder.files.map((file) => {
    const bytes = readFileSync(join(folder.root, file.path));
    hash.update(`${file.label}\0${file.path}\0${bytes.length}\0`).update(bytes);
    return bytes;
  });
  const digest = hash.digest('hex');
  const cachePath = join(cacheDir, `images-v${FORMAT}-${digest.slice(0, 16)}.bin`);
  const count = folder.files.length;
  let bytes: Uint8Array | undefined;
  try {
    bytes = statSync(cachePath).size === count * (4 + pixels) ? readFileSync(cachePath) : undefined;
  } catch {
    bytes = undefined;
  }
  // A missing or torn file (not exactly count labels and images) is made again.
  const converted = !bytes;
  if (!bytes) {
    bytes = convert(folder, sources, shape);
    mkdirSync(cacheDir, { recursive: true });
    // Written aside and renamed: two processes converting at once each leave a whole file.
    const partial = `${cachePath}.${process.pid}.partial`;
    writeFileSync(partial, bytes);
    renameSync(partial, cachePath);
  }
  const labels = new Int32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) labels[i] = view.getInt32(i * 4, true);
  const images = fromBytes(bytes.subarray(count * 4));
  return { dataset: new InMemoryDataset('images', shape, images, labels), path: cachePath, converted, hash: digest };
}

/** Every file decoded, resized to the shape and quantized to bytes, after the labels. */
function convert(folder: ImageFolder, sources: Buffer[], shape: [number, number, number]): Uint8Array {
  const pixels = shape[0] * shape[1] * shape[2];
  const count = folder.files.length;
  const bytes = new Uint8Array(count * (4 + pixels));
  const view = new DataView(bytes.buffer);
  for (const [i, file] of folder.files.entries()) {
    view.setInt32(i * 4, file.label, true);
    const image = decodeImage(new Uint8Array(sources[i].buffer, sources[i].byteOffset, sources[i].byteLength), join(folder.root, file.path));
    bytes.set(toBytes(resizeImage(image, shape)), count * 4 + i * pixels);
  }
  return bytes;
}
