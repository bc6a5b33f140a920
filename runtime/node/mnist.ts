import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InMemoryDataset } from '../../shared/data/dataset.ts';
import { mnistFromDigits, type MnistDigit } from '../../shared/data/mnist-digits.ts';
import { datasetCacheDir, readOrMakeCacheFile } from './cache.ts';

const PIXELS = 28 * 28;
/** Bumped when the cache file's layout changes: part of its name, so an old file is never misread. */
const FORMAT = 1;
/** A pixel is stored as its index in a table of the distinct values: the package's are i/255 rounded to 3 places, 256 of them. */
const MAX_VALUES = 256;

/** The package's entry (which orders the digits) and its ten JSON files, one per digit. */
function sourceFiles(): string[] {
  const main = createRequire(import.meta.url).resolve('mnist');
  return [main, ...Array.from({ length: 10 }, (_, digit) => join(dirname(main), 'digits', `${digit}.json`))];
}

let cached: InMemoryDataset | undefined;

/**
 * The `mnist` package's 10,000 digits, exactly as shared/data/mnist.ts loads
 * them, from a binary file named by the sha256 of the package's files:
 * importing the package parses 21 MB of JSON and builds the arrays (~1.3 s a
 * process, and every coordinator, worker and scorer loads it), where hashing
 * the files and reading the 7.9 MB file takes a small fraction of that. The
 * first load makes the file; a changed package makes a new one.
 */
export function loadMnistCached(): InMemoryDataset {
  cached ??= readMnist(datasetCacheDir()).dataset;
  return cached;
}

/** loadMnistCached without its memo: reads (or first makes) the cache in `cacheDir`, and says which it did. */
export function readMnist(cacheDir: string): { dataset: InMemoryDataset; path: string; converted: boolean } {
  const hash = createHash('sha256');
  for (const file of sourceFiles()) hash.update(readFileSync(file));
  const path = join(cacheDir, `mnist-v${FORMAT}-${hash.digest('hex').slice(0, 16)}.bin`);
  const { bytes, made } = readOrMakeCacheFile(path, isWhole, () => encode(mnistFromDigits(createRequire(import.meta.url)('mnist') as MnistDigit[])));
  return { dataset: decode(bytes), path, converted: made };
}

/**
 * Layout, little-endian: count (u32), the number of distinct pixel values V
 * (u32), the V values (f32), a label per image (u8), then a value index per
 * pixel (u8).
 */
function encode(dataset: InMemoryDataset): Uint8Array {
  const { count, images, labels } = dataset;
  const values = [...new Set(images)].sort((a, b) => a - b);
  if (values.length > MAX_VALUES) throw new Error(`mnist: ${values.length} distinct pixel values, the cache holds at most ${MAX_VALUES}`);
  const index = new Map(values.map((value, i) => [value, i]));
  const bytes = new Uint8Array(8 + values.length * 4 + count * (1 + PIXELS));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, count, true);
  view.setUint32(4, values.length, true);
  values.forEach((value, i) => view.setFloat32(8 + i * 4, value, true));
  const labelsAt = 8 + values.length * 4;
  for (let i = 0; i < count; i++) bytes[labelsAt + i] = labels[i];
  const pixelsAt = labelsAt + count;
  for (let i = 0; i < images.length; i++) bytes[pixelsAt + i] = index.get(images[i])!;
  return bytes;
}

/** Whether a file read back is whole: its size is what its header says (a torn or foreign file is made again). */
function isWhole(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const values = view.getUint32(4, true);
  return count > 0 && values <= MAX_VALUES && bytes.length === 8 + values * 4 + count * (1 + PIXELS);
}

function decode(bytes: Uint8Array): InMemoryDataset {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const table = new Float32Array(view.getUint32(4, true));
  for (let i = 0; i < table.length; i++) table[i] = view.getFloat32(8 + i * 4, true);
  const labelsAt = 8 + table.length * 4;
  const labels = Int32Array.from(bytes.subarray(labelsAt, labelsAt + count));
  const pixels = bytes.subarray(labelsAt + count);
  const images = new Float32Array(count * PIXELS);
  for (let i = 0; i < images.length; i++) images[i] = table[pixels[i]];
  return new InMemoryDataset('mnist', [28, 28, 1], images, labels);
}
