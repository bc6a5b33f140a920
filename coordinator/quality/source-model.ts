import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { deriveSeed, gaussian } from '../../shared/training/random.ts';
import type { SampleSource } from './sources.ts';

/** Images a generator makes per call: bounds its memory. */
const CHUNK = 250;

/**
 * An exported generator or decoder (model.json + weights.bin, as
 * coordinator/outputs.ts writes them). Its inputs say how to drive it: one
 * latent vector, or latents and a one-hot label (a conditional generator,
 * asked for each class in turn). Its last activation says its range: tanh
 * gives [-1, 1], mapped to [0, 1]. A diffusion denoiser cannot be sampled
 * from its export alone: score its checkpoint instead.
 */
export async function openExportedModel(dir: string): Promise<SampleSource> {
  const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  const manifest = modelJson.weightsManifest?.[0];
  if (!manifest) throw new TesseraError(ErrorCode.InvalidConfig, `${dir}/model.json has no weightsManifest`, { field: 'PATH' });
  const weights = Buffer.concat(await Promise.all((manifest.paths as string[]).map((path) => readFile(join(dir, path)))));
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: manifest.weights, weightData }));
  const drive = inputsOf(model, dir);
  const tanh = lastActivation(model) === 'tanh';
  const metadata = (modelJson.userDefinedMetadata ?? {}) as Record<string, unknown>;
  const origin = [metadata.jobId && `job ${metadata.jobId}`, metadata.round !== undefined && `round ${metadata.round}`].filter(Boolean).join(', ');
  return {
    description: `exported ${drive.classes > 0 ? 'conditional ' : ''}model ${model.name}${origin ? ` (${origin})` : ''}, latent ${drive.latentDim}, outputs ${tanh ? '[-1, 1]' : '[0, 1]'}`,
    async score(evaluator, count, seed, options) {
      const [height, width, channels] = model.outputs[0].shape.slice(1) as number[];
      const imageSize = height * width * channels;
      const images = new Float32Array(count * imageSize);
      const labels = new Int32Array(count).fill(-1);
      for (let start = 0, chunk = 0; start < count; start += CHUNK, chunk++) {
        const size = Math.min(CHUNK, count - start);
        if (drive.classes > 0) for (let i = 0; i < size; i++) labels[start + i] = (start + i) % drive.classes;
        const output = tf.tidy(() => {
          const latents = tf.tensor2d(gaussian(size * drive.latentDim, deriveSeed(seed, chunk)), [size, drive.latentDim]);
          const inputs =
            drive.classes > 0 ? [latents, tf.oneHot(tf.tensor1d(labels.subarray(start, start + size), 'int32'), drive.classes).toFloat()] : latents;
          const made = model.predict(inputs) as tf.Tensor;
          return (tanh ? made.add(1).div(2) : made).clipByValue(0, 1);
        });
        images.set((await output.data()) as Float32Array, start * imageSize);
        output.dispose();
      }
      return evaluator.score({ images, labels, count }, options);
    },
    dispose: () => model.dispose(),
  };
}

/** How many latent dimensions the model takes, and how many classes a label input has (0: none). */
function inputsOf(model: tf.LayersModel, dir: string): { latentDim: number; classes: number } {
  const shapes = model.inputs.map((input) => input.shape);
  const flat = shapes.every((shape) => shape.length === 2);
  if (flat && shapes.length === 1) return { latentDim: shapes[0][1] as number, classes: 0 };
  if (flat && shapes.length === 2) {
    // The label input is the one named so (cdcgan's g_labels), else the second.
    const labelIndex = model.inputs.findIndex((input) => /label/i.test(input.name)) === 0 ? 0 : 1;
    return { latentDim: shapes[1 - labelIndex][1] as number, classes: shapes[labelIndex][1] as number };
  }
  throw new TesseraError(
    ErrorCode.InvalidConfig,
    `${dir}: a model taking ${shapes.map((shape) => `[${shape.join(', ')}]`).join(' and ')} is not a generator or decoder (a diffusion denoiser? score the job's checkpoint instead)`,
    { field: 'PATH' },
  );
}

/** The activation of the layer that makes the output ('linear' when it has none). */
function lastActivation(model: tf.LayersModel): string {
  const config = model.layers[model.layers.length - 1].getConfig() as { activation?: string };
  return config.activation ?? 'linear';
}
