import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMnist } from '../../shared/data/mnist.ts';
import { readMnist } from './mnist.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'tessera-mnist-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('MNIST from its binary cache', () => {
  it('is made once, named by the content hash, and reads back every pixel and label the package gives', () => {
    const first = readMnist(cacheDir);
    expect(first.converted).toBe(true);
    expect(first.path).toMatch(/mnist-v1-[0-9a-f]{16}\.bin$/);
    // Header, 256 distinct values, then a byte per label and per pixel.
    expect(statSync(first.path).size).toBe(8 + 256 * 4 + 10_000 * (1 + 784));
    const again = readMnist(cacheDir);
    expect(again.converted).toBe(false);
    expect(again.path).toBe(first.path);

    const packaged = loadMnist();
    expect(again.dataset.count).toBe(packaged.count);
    expect(again.dataset.imageShape).toEqual([28, 28, 1]);
    // Bit for bit: a worker on the cache and a tab fed by a coordinator must train on the same examples.
    expect(Buffer.from(again.dataset.images.buffer).equals(Buffer.from(packaged.images.buffer))).toBe(true);
    expect(Array.from(again.dataset.labels)).toEqual(Array.from(packaged.labels));
  });

  it('makes a torn file again', () => {
    const { path } = readMnist(cacheDir);
    writeFileSync(path, new Uint8Array(1000));
    const remade = readMnist(cacheDir);
    expect(remade.converted).toBe(true);
    expect(remade.dataset.count).toBe(10_000);
  });
});
