/**
 * Local-update (DiLoCo-style) mode against synchronous mode on the same
 * number of samples: update bytes sent and the loss reached.
 *
 *   npx tsx bench/local-update.ts [--model dcgan|vae|ddpm] [--samples 10240] [--steps 8] [--quick]
 *
 * --quick is a smoke run on 512 samples (8 synchronous rounds, one local one): the bytes hold, the losses say little.
 *
 * Runs the real Job (validation, codec, aggregation, optimizers) with two
 * simulated workers in this process, no transport: the bytes are the encoded
 * updates' sizes. The loss is measured on a fixed held-out batch with fixed
 * noise after training. The baseline (sync) is measured in the same run.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { splitDataset } from '../shared/data/shards.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { getModel } from '../shared/models/registry.ts';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import { benchOptions } from './lib/options.ts';
import { simulateTraining } from './lib/simulated-training.ts';

const USAGE = `Usage: npx tsx bench/local-update.ts [options]

Local-update (DiLoCo) mode against synchronous mode on the same samples: update bytes and held-out loss.

  --model ID           model family (default dcgan)
  --samples N          samples to train on in each mode (default 10240; quick 512)
  --steps H            local steps per round (default 8)
  --batch N            batch per step and worker (default 32)
  --quick              a smoke run on 512 samples
  --help               print this and exit
`;
const values = benchOptions(USAGE, {
  model: { type: 'string', default: 'dcgan' },
  samples: { type: 'string' },
  steps: { type: 'string', default: '8' },
  batch: { type: 'string', default: '32' },
});
registerWasmConvKernels();
await tf.setBackend('wasm');

const spec = getModel(values.model);
const localSteps = Number(values.steps);
const batchSize = Number(values.batch);
const totalSamples = Number(values.samples ?? (values.quick ? 512 : 10240));
const dataset = loadMnist();
const trainer = spec.createTrainer(spec.defaults);
const initial = trainer.initialWeights(1);
const heldOut = splitDataset(dataset.count, 0.1, 1).heldOut.slice(0, 64);
const evalBatch = dataset.batch(Array.from(heldOut));
const evalNoise = trainer.drawNoise(evalBatch.count, 12345);

async function run(mode: 'sync' | 'local') {
  const { job, rounds, bytes, seconds } = await simulateTraining({
    spec,
    trainer,
    dataset,
    initial,
    workers: 2,
    batchPerWorker: batchSize,
    samples: totalSamples,
    training: { mode, localSteps },
  });
  trainer.setWeights(job.state.weights);
  const { losses } = await trainer.lossAndGrads(evalBatch, evalNoise);
  return { mode, rounds, samples: job.state.samplesSeen, bytes, losses, seconds };
}

const baseline = await run('sync');
const local = await run('local');
console.log(`\n${spec.id}: ${totalSamples} samples, 2 workers, batch ${batchSize} per step, local mode H=${localSteps}\n`);
console.log('| mode | rounds | samples | update bytes | bytes/sample | bytes vs sync | held-out losses | seconds |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const row of [baseline, local]) {
  const losses = Object.entries(row.losses)
    .map(([name, value]) => `${name} ${value.toFixed(4)}`)
    .join(', ');
  console.log(
    `| ${row.mode} | ${row.rounds} | ${row.samples} | ${(row.bytes / 1e6).toFixed(1)} MB | ${(row.bytes / row.samples).toFixed(0)} | ${(row.bytes / baseline.bytes).toFixed(3)} | ${losses} | ${row.seconds.toFixed(0)} |`,
  );
}
