import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { SampleSource } from './sources.ts';

/** A file name that states its label: `3-0012.png`, `3_0012.png`. */
const LABELLED_NAME = /^(\d+)[-_]/;
/** A subfolder that states its files' label: `class-3/` (as npm run export-dataset writes) or `3/`. */
const LABELLED_FOLDER = /^(?:class-)?(\d+)$/;

/**
 * A folder of single-image PNGs (and of its class-K/ subfolders), read in
 * name order, grey (the mean of R, G and B) in [0, 1]. A label comes from a
 * `K-` name prefix or a `class-K` folder; -1 otherwise. Undefined when the
 * folder holds no PNG.
 */
export async function openPngFolder(dir: string): Promise<SampleSource | undefined> {
  const files = await listPngs(dir);
  if (files.length === 0) return undefined;
  return {
    description: `${files.length} PNG images in ${dir}`,
    available: files.length,
    async score(evaluator, count, _seed, options) {
      const [height, width, channels] = evaluator.config.imageShape;
      const imageSize = height * width * channels;
      const chosen = files.slice(0, count);
      const images = new Float32Array(chosen.length * imageSize);
      const labels = new Int32Array(chosen.length);
      for (const [n, file] of chosen.entries()) {
        const png = PNG.sync.read(await readFile(file.path));
        if (png.width !== width || png.height !== height) {
          throw new TesseraError(ErrorCode.TensorMismatch, `${file.path} is ${png.width}x${png.height}, not ${width}x${height}: give single-digit images, not a grid`, { field: 'PATH' });
        }
        for (let pixel = 0; pixel < width * height; pixel++) {
          const grey = (png.data[pixel * 4] + png.data[pixel * 4 + 1] + png.data[pixel * 4 + 2]) / (3 * 255);
          for (let c = 0; c < channels; c++) images[(n * width * height + pixel) * channels + c] = grey;
        }
        labels[n] = file.label < evaluator.config.classes ? file.label : -1;
      }
      return evaluator.score({ images, labels, count: chosen.length }, options);
    },
    dispose: () => {},
  };
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
