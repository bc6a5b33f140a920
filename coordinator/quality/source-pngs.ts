import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { SampleSource } from './sources.ts';

/** A file name that states its label: `3-0012.png`, `3_0012.png`. */
const LABELLED_NAME = /^(\d+)[-_]/;
/** A subfolder that states its files' label: `3/` (as npm run export-dataset writes for digits) or `class-3/`. */
const LABELLED_FOLDER = /^(?:class-)?(\d+)$/;
/** The gutter coordinator/outputs.ts's sampleGridPng draws between cells (white). */
const GRID_GUTTER = 1;

export interface PngOptions {
  /** Cut each PNG into cells of a sample grid (sampleGridPng's layout), skipping empty (all-white) cells. */
  grid?: boolean;
  /** Unlabelled images were asked for the classes in turn (0, 1, ..., 9, 0, ...), as a conditional job's grid is. */
  cycleLabels?: boolean;
  /** Image side the evaluator takes (28 for MNIST). */
  size: number;
}

/** One grey image as read, with the label its name or folder states (-1: none). */
interface Digit {
  pixels: Float32Array;
  label: number;
}

/**
 * PNGs to score: a folder (and its K/ or class-K/ subfolders) read in name order,
 * or one grid file. Grey is the mean of R, G and B, in [0, 1]. A label comes
 * from a `K-` name prefix or a `class-K` folder; -1 otherwise. Undefined
 * when there is no PNG.
 */
export async function openPngs(paths: { dir?: string; file?: string }, options: PngOptions): Promise<SampleSource | undefined> {
  const files = paths.file ? [{ path: paths.file, label: -1 }] : await listPngs(paths.dir!);
  if (files.length === 0) return undefined;
  const digits: Digit[] = [];
  for (const file of files) digits.push(...readDigits(file.path, PNG.sync.read(await readFile(file.path)), file.label, options));
  return {
    description: options.grid
      ? `${digits.length} images cut from ${files.length} grid PNG${files.length > 1 ? 's' : ''} (${paths.file ?? paths.dir})`
      : `${digits.length} PNG images in ${paths.dir}`,
    available: digits.length,
    async score(evaluator, count, _seed, scoreOptions) {
      const chosen = digits.slice(0, count);
      const images = new Float32Array(chosen.length * options.size * options.size);
      chosen.forEach((digit, n) => images.set(digit.pixels, n * digit.pixels.length));
      const { classes } = evaluator.config;
      const labels = Int32Array.from(chosen, (digit, n) => (digit.label >= 0 && digit.label < classes ? digit.label : options.cycleLabels ? n % classes : -1));
      return evaluator.score({ images, labels, count: chosen.length }, scoreOptions);
    },
    dispose: () => {},
  };
}

function readDigits(path: string, png: PNG, label: number, options: PngOptions): Digit[] {
  const { size } = options;
  const cell = size + GRID_GUTTER;
  if (!options.grid) {
    if (png.width !== size || png.height !== size) {
      throw new TesseraError(
        ErrorCode.TensorMismatch,
        `${path} is ${png.width}x${png.height}, not ${size}x${size}: give single-digit images (or --grid for a sample grid)`,
        { field: 'PATH' },
      );
    }
    return [{ pixels: greyCell(png, 0, 0, size), label }];
  }
  if ((png.width - GRID_GUTTER) % cell !== 0 || (png.height - GRID_GUTTER) % cell !== 0) {
    throw new TesseraError(
      ErrorCode.TensorMismatch,
      `${path} is ${png.width}x${png.height}: not a grid of ${size}x${size} cells with ${GRID_GUTTER}-pixel gutters`,
      { field: 'PATH' },
    );
  }
  const digits: Digit[] = [];
  for (let top = GRID_GUTTER; top < png.height; top += cell) {
    for (let left = GRID_GUTTER; left < png.width; left += cell) {
      const pixels = greyCell(png, left, top, size);
      // An empty slot of the last row is white; no sample is (digits are light strokes on black).
      if (!pixels.every((value) => value === 1)) digits.push({ pixels, label });
    }
  }
  return digits;
}

function greyCell(png: PNG, left: number, top: number, size: number): Float32Array {
  const pixels = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const offset = ((top + y) * png.width + left + x) * 4;
      pixels[y * size + x] = (png.data[offset] + png.data[offset + 1] + png.data[offset + 2]) / (3 * 255);
    }
  }
  return pixels;
}

async function listPngs(dir: string): Promise<{ path: string; label: number }[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files: { path: string; label: number }[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.isFile() && entry.name.toLowerCase().endsWith('.png')) {
      const match = LABELLED_NAME.exec(entry.name);
      files.push({ path: join(dir, entry.name), label: match ? Number(match[1]) : -1 });
    } else if (entry.isDirectory() && LABELLED_FOLDER.test(entry.name)) {
      const label = Number(LABELLED_FOLDER.exec(entry.name)![1]);
      const inner = (await readdir(join(dir, entry.name))).filter((name) => name.toLowerCase().endsWith('.png')).sort();
      files.push(...inner.map((name) => ({ path: join(dir, entry.name, name), label })));
    }
  }
  return files;
}
