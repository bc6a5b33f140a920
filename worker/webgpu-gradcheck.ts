/**
 * Child process of worker/webgpu.test.ts, run with a WebGPU adapter present:
 * lets the worker's selection choose on its own, then forces webgpu the way
 * `--backend webgpu` does, computes one small DCGAN's gradients on it and on
 * the cpu backend from the same weights, batch and noise, and prints one line
 * `GRADCHECK <json>`. Its own process: the tfjs backend and navigator.gpu are
 * process-global.
 */
import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../shared/codec/types.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import { dcgan, DcganTrainer } from '../shared/models/gan/dcgan.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';

// Small, because the cpu backend is slow; latentDim 16 still exercises every layer.
const CONFIG = dcgan.parseConfig({ width: 8, latentDim: 16 });

export interface GradcheckReport {
  /** What `selectNodeBackend()` chose with nothing forced, and what it passed over. */
  automatic: { name: string; skipped: { name: string; reason: string }[] };
  /** What `selectNodeBackend('webgpu')` answered. */
  backend: string;
  device: string;
  losses: { webgpu: Record<string, number>; cpu: Record<string, number> };
  /** ||webgpu - cpu|| / ||cpu|| per gradient tensor. */
  relativeErrors: Record<string, number>;
}

/** A fresh trainer on the current backend (so its variables live there), given the weights. */
function trainerWith(weights: NamedArrays): DcganTrainer {
  const trainer = new DcganTrainer(CONFIG);
  trainer.setWeights(weights);
  return trainer;
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    difference += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(difference) / Math.sqrt(norm);
}

const automatic = await selectNodeBackend();
const choice = await selectNodeBackend('webgpu');

// Weights, noise and batch are drawn once, on the cpu backend, and fed to both.
await tf.setBackend('cpu');
const probe = new DcganTrainer(CONFIG);
const weights = probe.initialWeights(42);
const noise = probe.drawNoise(8, 7);
probe.dispose();
const batch = loadMnist().batch([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000]);
const cpuTrainer = trainerWith(weights);
const onCpu = await cpuTrainer.lossAndGrads(batch, noise);
cpuTrainer.dispose();

await tf.setBackend('webgpu');
const webgpuTrainer = trainerWith(weights);
const onWebgpu = await webgpuTrainer.lossAndGrads(batch, noise);
webgpuTrainer.dispose();

const report: GradcheckReport = {
  automatic: { name: automatic.name, skipped: automatic.skipped },
  backend: choice.name,
  device: choice.device,
  losses: { webgpu: onWebgpu.losses, cpu: onCpu.losses },
  relativeErrors: Object.fromEntries(Object.keys(onCpu.grads).map((name) => [name, relativeError(onWebgpu.grads[name], onCpu.grads[name])])),
};
process.stdout.write(`GRADCHECK ${JSON.stringify(report)}\n`);
// A Dawn device keeps the event loop alive; the answer is out, so leave.
process.exit(0);
