import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildClassifier, DEFAULT_CLASSIFIER_CONFIG, type ClassifierConfig } from '../../shared/eval/classifier.ts';
import { InMemoryDataset } from '../../shared/data/dataset.ts';
import { loadMnist } from '../../shared/data/mnist.ts';
import { drawRows } from '../../shared/eval/rows.ts';
import { registerWasmConvKernels } from '../../shared/tfjs/wasm-conv-kernels.ts';
import { registerEvalDataset } from './datasets.ts';
import { loadEvaluator } from './load.ts';
import { cacheWeightsDir, classifierHash, loadClassifierWeights, saveClassifier, weightsStem } from './weights.ts';

const config: ClassifierConfig = { ...DEFAULT_CLASSIFIER_CONFIG, filters: [2, 2], features: 4 };
const data = { images: new Float32Array(3 * 784).fill(0.5), labels: Int32Array.from([1, 2, 3]), count: 3 };
let dir: string;

beforeAll(async () => {
  registerWasmConvKernels();
  await tf.setBackend('wasm');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-eval-weights-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const record = (hash: string) => ({
  dataset: 'mnist',
  hash,
  config,
  heldOutAccuracy: 0.5,
  trainingSeconds: 1,
  backend: 'wasm',
  command: 'test',
  trainedAt: new Date(0).toISOString(),
});

describe('classifier weights', () => {
  it('are named by a hash of the data, the config and the format: any change gives another name', () => {
    const hash = classifierHash('mnist', config, data);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(classifierHash('mnist', { ...config }, { ...data, images: data.images.slice() })).toBe(hash);
    expect(classifierHash('mnist', { ...config, epochs: 9 }, data)).not.toBe(hash);
    expect(classifierHash('mnist', config, { ...data, labels: Int32Array.from([1, 2, 4]) })).not.toBe(hash);
    expect(classifierHash('fashion-mnist', config, data)).not.toBe(hash);
    expect(weightsStem('mnist', hash)).toBe(`mnist-${hash.slice(0, 12)}`);
  });

  it('load back into a fresh classifier exactly; another hash finds none', async () => {
    const hash = classifierHash('mnist', config, data);
    const saved = buildClassifier({ ...config, seed: 7 });
    await saveClassifier(dir, saved, record(hash));
    const loaded = buildClassifier(config);
    expect(await loadClassifierWeights(dir, 'mnist', hash, loaded)).toMatchObject({ hash, heldOutAccuracy: 0.5 });
    expect(loaded.getWeights().map((weight) => Array.from(weight.dataSync()))).toEqual(saved.getWeights().map((weight) => Array.from(weight.dataSync())));
    expect(await loadClassifierWeights(dir, 'mnist', 'f'.repeat(64), loaded)).toBeUndefined();
    saved.dispose();
    loaded.dispose();
  });

  it('refuse files that do not fit the classifier', async () => {
    const hash = classifierHash('mnist', { ...config, seed: 2 }, data);
    const wider = buildClassifier({ ...config, features: 6 });
    await saveClassifier(dir, wider, record(hash));
    wider.dispose();
    const model = buildClassifier(config);
    await expect(loadClassifierWeights(dir, 'mnist', hash, model)).rejects.toThrow(/do not fit the classifier/);
    model.dispose();
  });

  it('are cached under $TESSERA_CACHE/eval, else ~/.cache/tessera/eval', () => {
    expect(cacheWeightsDir({ TESSERA_CACHE: '/tmp/c' })).toBe('/tmp/c/eval');
    expect(cacheWeightsDir({})).toBe(path.join(os.homedir(), '.cache', 'tessera', 'eval'));
  });
});

describe('loadEvaluator without matching weights', () => {
  it('trains a classifier, says so, caches it, and loads it from the cache the next time', async () => {
    // A small dataset of its own (300 MNIST digits) and a small classifier: the whole path in seconds.
    const mnist = loadMnist();
    const subset = mnist.batch(drawRows(mnist.count, 300, 3));
    registerEvalDataset({
      id: 'mnist-300',
      load: () => new InMemoryDataset('mnist-300', [28, 28, 1], subset.images, subset.labels),
      classifier: { ...config, epochs: 1 },
    });
    const cacheDir = path.join(dir, 'cache');
    const lines: string[] = [];
    const first = await loadEvaluator('mnist-300', { cacheDir, log: (line) => lines.push(line) });
    expect(lines[0]).toMatch(/no mnist-300 classifier for hash [0-9a-f]{12} .* training one into .*cache/);
    expect(lines.at(-1)).toMatch(/held-out accuracy [\d.]+%/);
    const files = fs.readdirSync(cacheDir).sort();
    expect(files).toEqual([expect.stringMatching(/^mnist-300-[0-9a-f]{12}\.bin$/), expect.stringMatching(/^mnist-300-[0-9a-f]{12}\.json$/)]);
    expect(first.heldOutReference.count).toBe(30);
    const again: string[] = [];
    const second = await loadEvaluator('mnist-300', { cacheDir, log: (line) => again.push(line) });
    expect(again).toEqual([]);
    expect(second.heldOutReference).toEqual(first.heldOutReference);
    first.dispose();
    second.dispose();
  });
});
