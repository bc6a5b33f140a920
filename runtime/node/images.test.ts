import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJobConfig } from '../../coordinator/config.ts';
import { shapePng, writeShapeFolder } from '../../test/fixtures/image-folder.ts';
import { describeDataset, loadDataset } from './datasets.ts';
import { listImageFolder, readImageFolder } from './images.ts';

const root = mkdtempSync(join(tmpdir(), 'tessera-images-unit-'));
// Loads convert into the cache folder: this test's own, not the user's.
process.env.TESSERA_CACHE = join(root, 'tessera-cache');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const folder = writeShapeFolder(join(root, 'shapes'), { perClass: 4, size: 16, seed: 9 });

/** A folder with these files (relative paths), each a small PNG. */
function folderWith(name: string, files: string[]): string {
  const dir = join(root, name);
  for (const file of files) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), file.endsWith('.txt') ? 'notes' : shapePng('circle', 8, files.indexOf(file)));
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return { code: (error as { code: string }).code, field: (error as { field: string }).field, message: (error as Error).message };
  }
  throw new Error('expected a refusal');
};

describe('listImageFolder', () => {
  it('makes a class of each subfolder, sorted by name, its images sorted too', () => {
    const listed = listImageFolder(folder);
    expect(listed.classNames).toEqual(['circle', 'square', 'triangle']);
    expect(listed.files.slice(0, 5)).toEqual([
      { path: join('circle', 'circle-000.png'), label: 0 },
      { path: join('circle', 'circle-001.png'), label: 0 },
      { path: join('circle', 'circle-002.png'), label: 0 },
      { path: join('circle', 'circle-003.png'), label: 0 },
      { path: join('square', 'square-000.png'), label: 1 },
    ]);
  });

  it('reads images directly in the folder as unlabelled, skipping hidden and other files', () => {
    const listed = listImageFolder(folderWith('flat', ['b.png', 'a.JPG', '.hidden.png', 'notes.txt']));
    expect(listed.classNames).toEqual([]);
    expect(listed.files).toEqual([
      { path: 'a.JPG', label: -1 },
      { path: 'b.png', label: -1 },
    ]);
  });

  it('refuses no folder, an empty one, an empty class, and images beside class folders, naming dataset.path', () => {
    const cases = [
      () => listImageFolder(''),
      () => listImageFolder(join(root, 'missing')),
      () => listImageFolder(folderWith('empty', ['notes.txt'])),
      () => listImageFolder(folderWith('empty-class', ['cats/a.png', 'dogs/notes.txt'])),
      () => listImageFolder(folderWith('mixed', ['cats/a.png', 'stray.png'])),
    ];
    const messages = cases.map((run) => refusal(run));
    for (const message of messages) expect(message).toMatchObject({ code: 'INVALID_CONFIG', field: 'dataset.path' });
    expect(messages.map((message) => message.message)).toEqual([
      expect.stringMatching(/set dataset.path/),
      expect.stringMatching(/cannot read the folder/),
      expect.stringMatching(/no PNG or JPEG file/),
      expect.stringMatching(/class folder .*dogs holds no PNG or JPEG file/),
      expect.stringMatching(/both images \(stray.png, \.\.\.\) and class subfolders/),
    ]);
  });
});

describe('readImageFolder', () => {
  it('converts once to a cache file named by the content hash, then reads the same examples from it', () => {
    const cache = join(root, 'cache');
    const first = readImageFolder(folder, [8, 8, 3], cache);
    expect(first.converted).toBe(true);
    expect(first.path).toMatch(/images-v1-[0-9a-f]{16}\.bin$/);
    const again = readImageFolder(folder, [8, 8, 3], cache);
    expect(again.converted).toBe(false);
    expect(again.path).toBe(first.path);
    expect(again.dataset.images).toEqual(first.dataset.images);
    expect(Array.from(again.dataset.labels)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    // Another shape is another file; so is a changed image.
    expect(readImageFolder(folder, [8, 8, 1], cache).path).not.toBe(first.path);
    const copy = writeShapeFolder(join(root, 'copy'), { perClass: 4, size: 16, seed: 9 });
    expect(readImageFolder(copy, [8, 8, 3], cache)).toMatchObject({ path: first.path, converted: false });
    writeFileSync(join(copy, 'square', 'square-002.png'), shapePng('square', 16, 1234));
    expect(readImageFolder(copy, [8, 8, 3], cache).path).not.toBe(first.path);
  });
});

describe('the images dataset in a job config', () => {
  it('takes its classes from the subfolders and its shape from dataset.shape (32x32x3 by default)', () => {
    const config = parseJobConfig({ dataset: { id: 'images', path: folder }, model: { id: 'cdcgan' } });
    expect(config.dataset).toEqual({ id: 'images', path: folder, shape: [32, 32, 3], heldOutFraction: 0.1, shards: 16 });
    const spec = describeDataset(config.dataset);
    expect(spec).toMatchObject({ imageShape: [32, 32, 3], classes: 3, classNames: ['circle', 'square', 'triangle'], count: 12 });
    const grey = parseJobConfig({ dataset: { id: 'images', path: folder, shape: [16, 24, 1] } });
    expect(grey.dataset.shape).toEqual([16, 24, 1]);
    expect(loadDataset(grey.dataset).imageShape).toEqual([16, 24, 1]);
    // A resolved config parses to itself, as a checkpoint stores it.
    expect(parseJobConfig(JSON.parse(JSON.stringify(config)))).toEqual(config);
  });

  it('refuses what does not fit, naming the field', () => {
    const flat = folderWith('flat-config', ['a.png', 'b.png']);
    const cases: [unknown, string][] = [
      [{ dataset: { id: 'images' } }, 'dataset.path'],
      [{ dataset: { id: 'images', path: folder, shape: [32, 32] } }, 'dataset.shape'],
      [{ dataset: { id: 'images', path: folder, shape: [32, 32, 4] } }, 'dataset.shape'],
      [{ dataset: { id: 'images', path: folder, shape: [4, 4, 3] } }, 'dataset.shape'],
      [{ dataset: { id: 'images', path: folder, shape: [512, 512, 3] } }, 'dataset.shape[0]'],
      // dcgan halves twice: sides must be multiples of 4.
      [{ dataset: { id: 'images', path: folder, shape: [30, 30, 3] } }, 'dataset.shape'],
      // A conditional model needs classes; a flat folder has none.
      [{ dataset: { id: 'images', path: flat }, model: { id: 'cdcgan' } }, 'dataset.path'],
      // Packaged datasets have their own shape and no folder.
      [{ dataset: { id: 'mnist', shape: [32, 32, 3] } }, 'dataset.shape'],
      [{ dataset: { id: 'mnist', path: folder } }, 'dataset.path'],
    ];
    for (const [raw, field] of cases)
      expect(
        refusal(() => parseJobConfig(raw)),
        JSON.stringify(raw),
      ).toMatchObject({ code: 'INVALID_CONFIG', field });
    expect(parseJobConfig({ dataset: { id: 'mnist', shape: [28, 28, 1] } }).dataset.shape).toEqual([28, 28, 1]);
    expect(parseJobConfig({ dataset: { id: 'images', path: flat }, model: { id: 'ddpm' } }).dataset.id).toBe('images');
  });
});
