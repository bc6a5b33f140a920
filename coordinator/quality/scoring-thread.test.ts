import { afterAll, describe, expect, it } from 'vitest';
import { getModel } from '../../shared/models/registry.ts';
import { selectNodeBackend } from '../../runtime/node/backend.ts';
import { ScoringThread } from './scoring-thread.ts';

/**
 * The real scoring thread: its own tfjs, the committed MNIST classifier, and
 * a small DCGAN whose weights arrive as transferred copies.
 */
describe('ScoringThread', () => {
  const thread = new ScoringThread();
  afterAll(() => thread.close());

  it('scores a model’s samples in its own thread, copying the weights it is given, and takes one request at a time', async () => {
    await selectNodeBackend('wasm');
    const spec = getModel('dcgan');
    const config = spec.parseConfig({ width: 4, latentDim: 8 });
    const trainer = spec.createTrainer(config);
    const weights = trainer.initialWeights(1);
    trainer.dispose();
    const before = Object.values(weights).reduce((sum, array) => sum + array.byteLength, 0);

    const job = { model: { id: 'dcgan', config }, dataset: { id: 'mnist', heldOutFraction: 0.1, splitSeed: 1 }, weights, count: 32, seed: 5 };
    const first = thread.score(job);
    await expect(thread.score(job)).rejects.toThrow(/busy/);
    // The job's own arrays stay whole: only copies moved to the thread.
    expect(Object.values(weights).reduce((sum, array) => sum + array.byteLength, 0)).toBe(before);
    const report = await first;
    expect(report).toMatchObject({ dataset: 'mnist', count: 32 });
    // An untrained generator's samples are far from digits: above the real-digit floor, few recognisable.
    expect(report.frechet).toBeGreaterThan(report.frechetFloor);
    expect(report.recognisable).toBeLessThan(0.5);
    for (const value of [report.precision, report.recall, report.recognisable, report.coverageEntropy]) {
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThanOrEqual(1);
    }

    // Same weights, same seed: the same samples, the same figures.
    const again = await thread.score(job);
    expect(again.frechet).toBe(report.frechet);
  });

  it('answers a request it cannot score with its reason, and keeps serving', async () => {
    const job = {
      model: { id: 'dcgan', config: { width: 4, latentDim: 8 } },
      dataset: { id: 'mnist', heldOutFraction: 0.1, splitSeed: 1 },
      weights: {},
      count: 32,
      seed: 5,
    };
    await expect(thread.score(job)).rejects.toThrow();
    await expect(thread.score({ ...job, dataset: { ...job.dataset, id: 'cifar' } })).rejects.toThrow(/cifar/);
  });
});
