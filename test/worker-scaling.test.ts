import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateTraining, type SimulatedRun } from '../bench/lib/simulated-training.ts';
import { loadEvaluator } from '../coordinator/quality/load.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import type { Evaluator } from '../shared/eval/evaluator.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import type { Trainer } from '../shared/models/types.ts';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import { relativeError } from '../shared/models/trainer-contract.ts';

/**
 * More workers at the same global batch train the same model. Synchronous
 * data parallelism averages the workers' mean gradients, weighted by samples,
 * into the union batch's mean gradient; the shards dealt to 1, 2 or 4 workers
 * yield the same examples per round, and each example's noise comes from the
 * round's seed and its index. So the runs differ only in float summation
 * order, and the test checks the whole path: shard dealing and sampling, the
 * worker's gradient, the f32 codec, validation, aggregation, the Adam step.
 * Measured: distances 759.9, 759.6 and 765.2 (untrained 3138.8), 0.7% apart.
 * With one noise seed per worker, as before, the first steps differed and the
 * distances were 788.6, 773.6 and 807.4: 4.4% apart, inside the issue's 5% by
 * luck (10% at batch 64 and 8,192 samples), so the first-step check is the sharp one.
 */
// The architecture this test was measured with (no norms): it checks the data-parallel path, not the recipe.
const MODEL_CONFIG = { width: 8, latentDim: 16, generatorNorm: 'none', discriminatorNorm: 'none', generatorDepth: 2 } as const;
/** A high rate (10x the default), so 128 steps take the narrow GAN from its initial distance (~3100) to ~760. */
const OPTIMIZERS = { generator: { learningRate: 2e-3 }, discriminator: { learningRate: 2e-3 } };
const GLOBAL_BATCH = 32;
const SAMPLES = 128 * GLOBAL_BATCH;
const SCORED = 256;

describe('1, 2 and 4 simulated workers at the same global batch', () => {
  let trainer: Trainer;
  let evaluator: Evaluator;
  let initial: ReturnType<Trainer['initialWeights']>;

  beforeAll(async () => {
    registerWasmConvKernels();
    await tf.setBackend('wasm');
    trainer = dcgan.createTrainer(dcgan.parseConfig(MODEL_CONFIG));
    initial = trainer.initialWeights(1);
    evaluator = await loadEvaluator('mnist');
  });

  afterAll(() => {
    trainer?.dispose();
    evaluator?.dispose();
  });

  const run = (workers: number, samples: number) => {
    const options: SimulatedRun = {
      spec: dcgan,
      trainer,
      dataset: loadMnist(),
      initial,
      workers,
      batchPerWorker: GLOBAL_BATCH / workers,
      samples,
      modelConfig: MODEL_CONFIG,
      optimizers: OPTIMIZERS,
    };
    return simulateTraining(options);
  };

  it('take the same first step, up to float summation order', async () => {
    // One after another: the runs share the trainer.
    const one = await run(1, GLOBAL_BATCH);
    const two = await run(2, GLOBAL_BATCH);
    const four = await run(4, GLOBAL_BATCH);
    for (const other of [two, four]) {
      expect(other.rounds).toBe(1);
      for (const name of Object.keys(one.weights)) expect(relativeError(other.weights[name], one.weights[name]), name).toBeLessThan(1e-5);
    }
    // It did move: Adam's first step moves every weight by about the learning rate.
    expect(relativeError(one.weights['g_dense/kernel'], initial['g_dense/kernel'])).toBeGreaterThan(0.01);
  });

  it('reach Fréchet distances within 5% of each other at equal samples seen', async () => {
    trainer.setWeights(initial);
    const untrained = await evaluator.scoreTrainer(trainer, dcgan, SCORED, 7);
    const distances: number[] = [];
    for (const workers of [1, 2, 4]) {
      const result = await run(workers, SAMPLES);
      expect(result.job.state.samplesSeen).toBe(SAMPLES);
      trainer.setWeights(result.weights);
      distances.push((await evaluator.scoreTrainer(trainer, dcgan, SCORED, 7)).frechet);
    }
    const [best, worst] = [Math.min(...distances), Math.max(...distances)];
    expect(worst / best, `distances ${distances.map((d) => d.toFixed(1)).join(', ')}`).toBeLessThan(1.05);
    // Training moved the samples far from where they started, so agreeing is not agreeing on noise.
    expect(worst, `untrained ${untrained.frechet.toFixed(1)}`).toBeLessThan(0.85 * untrained.frechet);
  });
});
