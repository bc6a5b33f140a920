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
import { parseJobConfig } from '../coordinator/config.ts';
import { Job } from '../coordinator/job.ts';
import { getCodec } from '../shared/codec/index.ts';
import { arraysToTensors } from '../shared/codec/named.ts';
import { splitDataset } from '../shared/data/shards.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { getModel } from '../shared/models/registry.ts';
import { runLocalSteps, type InnerState } from '../shared/training/local-steps.ts';
import { deriveSeed } from '../shared/training/random.ts';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import { benchOptions } from './lib/options.ts';

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
const workers = ['a', 'b'];
const totalSamples = Number(values.samples ?? (values.quick ? 512 : 10240));
const dataset = loadMnist();
const trainer = spec.createTrainer(spec.defaults);
const initial = trainer.initialWeights(1);
const heldOut = splitDataset(dataset.count, 0.1, 1).heldOut.slice(0, 64);
const evalBatch = dataset.batch(Array.from(heldOut));
const evalNoise = trainer.drawNoise(evalBatch.count, 12345);

async function run(mode: 'sync' | 'local') {
  const config = parseJobConfig({ model: { id: spec.id }, training: { mode, batchSize, localSteps, batching: 'equal', deadline: 'fixed' } });
  const job = new Job(config, trainer.shapes, Job.initialState(spec, structuredClone(initial), config.dataset.shards), dataset.count);
  const perRound = batchSize * workers.length * (mode === 'local' ? localSteps : 1);
  const rounds = Math.round(totalSamples / perRound);
  const inner: Record<string, InnerState> = { a: {}, b: {} };
  let bytes = 0;
  const started = performance.now();
  for (let r = 0; r < rounds; r++) {
    const round = await job.openRound(workers.map((id) => ({ id, batchSize: perRound / workers.length })), r);
    for (const [workerId, { message }] of round.assignments) {
      const batch = dataset.batch(message.sampleIndices);
      let result;
      if (message.localSteps && message.localSteps > 1) {
        const delta = await runLocalSteps(trainer, spec, job.state.weights, batch, message.localSteps, (count, step) => trainer.drawNoise(count, deriveSeed(message.seed, step)), message.innerOptimizers!, inner[workerId]);
        result = { grads: delta.delta, losses: delta.losses };
      } else {
        trainer.setWeights(job.state.weights);
        result = await trainer.lossAndGrads(batch, trainer.drawNoise(batch.count, message.seed));
      }
      const tensors = getCodec('f32').encode(arraysToTensors(result.grads, trainer.shapes)).slice();
      bytes += tensors.byteLength;
      job.acceptUpdate(workerId, { type: 'update', jobId: config.id, round: message.round, version: message.version, weightsHash: message.weightsHash, samples: batch.count, codec: 'f32', tensors, losses: result.losses, timing: { computeMs: 1, fetchMs: 0 } }, r);
    }
    job.closeRound(r + 1);
  }
  trainer.setWeights(job.state.weights);
  const { losses } = await trainer.lossAndGrads(evalBatch, evalNoise);
  return { mode, rounds, samples: job.state.samplesSeen, bytes, losses, seconds: (performance.now() - started) / 1000 };
}

const baseline = await run('sync');
const local = await run('local');
console.log(`\n${spec.id}: ${totalSamples} samples, 2 workers, batch ${batchSize} per step, local mode H=${localSteps}\n`);
console.log('| mode | rounds | samples | update bytes | bytes/sample | bytes vs sync | held-out losses | seconds |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const row of [baseline, local]) {
  const losses = Object.entries(row.losses).map(([name, value]) => `${name} ${value.toFixed(4)}`).join(', ');
  console.log(`| ${row.mode} | ${row.rounds} | ${row.samples} | ${(row.bytes / 1e6).toFixed(1)} MB | ${(row.bytes / row.samples).toFixed(0)} | ${(row.bytes / baseline.bytes).toFixed(3)} | ${losses} | ${row.seconds.toFixed(0)} |`);
}
