import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { datasetCacheDir, readOrMakeCacheFile } from './cache.ts';
import { InMemoryDataset } from '../../shared/data/dataset.ts';

const CLASSES = 10;
const PIXELS = 28 * 28;
/** Bumped when the cache file's layout changes: part of its name, so an old file is never misread. */
const FORMAT = 1;

/** The package's ten JSON files, one per class (7,000 images each, 784 integers in 0-255 per image). */
function sourceFiles(): string[] {
  const main = createRequire(import.meta.url).resolve('fashion-mnist');
  return Array.from({ length: CLASSES }, (_, label) => join(dirname(main), 'clothes', `${label}.json`));
}

let cached: InMemoryDataset | undefined;

/**
 * The 70,000 images of the `fashion-mnist` package (its training and test
 * images together), class by class as stored. Parsing its 150 MB of JSON
 * takes seconds and a few GB of heap, so the first load converts it to a
 * binary file (labels then pixels, one byte each: 55 MB) named by the sha256
 * of the JSON bytes; later loads hash the JSON (a fraction of a second) and
 * read that file. A changed package makes a new file.
 */
export function loadFashionMnist(): InMemoryDataset {
  cached ??= readFashionMnist(datasetCacheDir()).dataset;
  return cached;
}

/** loadFashionMnist without its memo: reads (or first makes) the cache in `cacheDir`, and says which it did. */
export function readFashionMnist(cacheDir: string): { dataset: InMemoryDataset; path: string; converted: boolean } {
  const files = sourceFiles();
  const hash = createHash('sha256');
  const sources = files.map((file) => {
    const bytes = readFileSync(file);
    hash.update(bytes);
    return bytes;
  });
  const path = join(cacheDir, `fashion-mnist-v${FORMAT}-${hash.digest('hex').slice(0, 16)}.bin`);
  // A torn file (a size that is not a whole number of examples) is made again.
  const isWhole = (bytes: Uint8Array) => bytes.length > 0 && Number.isInteger(bytes.length / (1 + PIXELS));
  const { bytes, made } = readOrMakeCacheFile(path, isWhole, () => convert(sources));
  return { dataset: fromBytes(bytes), path, converted: made };
}

/** JSON per class -> one buffer: every label (one byte each), then every image's pixels (one byte each). */
function convert(sources: Buffer[]): Uint8Array {
  const classes = sources.map((source, label) => {
    // Class 0's file holds two empty entries (at 1000 and one more) among its 7,000 images: they are skipped.
    const images = (JSON.parse(source.toString('utf8')) as { data: number[][] }).data.filter((image) => image.length > 0);
    for (const [i, image] of images.entries())
      if (image.length !== PIXELS) throw new Error(`fashion-mnist class ${label} image ${i}: ${image.length} pixels, expected ${PIXELS}`);
    return images;
  });
  const count = classes.reduce((sum, images) => sum + images.length, 0);
  const bytes = new Uint8Array(count * (1 + PIXELS));
  let index = 0;
  for (const [label, images] of classes.entries()) {
    for (const image of images) {
      bytes[index] = label;
      bytes.set(image, count + index * PIXELS);
      index += 1;
    }
  }
  return bytes;
}

function fromBytes(bytes: Uint8Array): InMemoryDataset {
  const count = bytes.length / (1 + PIXELS);
  const labels = Int32Array.from(bytes.subarray(0, count));
  const images = new Float32Array(count * PIXELS);
  const pixels = bytes.subarray(count);
  for (let i = 0; i < images.length; i++) images[i] = pixels[i] / 255;
  return new InMemoryDataset('fashion-mnist', [28, 28, 1], images, labels);
}
