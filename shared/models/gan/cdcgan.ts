import * as tf from '@tensorflow/tfjs';
import type { DataShape, ModelSpec } from '../types.ts';
import { fields, parseConfig, type Schema } from '../../protocol/schema.ts';
import { discriminatorDense, discriminatorFeatures, generatorBody } from './blocks.ts';
import { dcgan, dcganSchema, DcganTrainer, type DcganConfig, type GanNetworks } from './dcgan.ts';

/** The same knobs as DCGAN: the label conditioning adds no free size. */
export type CdcganConfig = DcganConfig;

/** dcgan's knobs, with two convolutions in D and in G (the DCGAN paper's): cdcgan met its targets with them, and deeper ones were measured on dcgan only. */
const schema: Schema<CdcganConfig> = { ...dcganSchema, discriminatorDepth: fields.integer(2, 2, 6), generatorDepth: fields.integer(2, 2, 6) };

/** MNIST's ten digits: the classes it is built for when no dataset says otherwise. */
const CLASSES = 10;

/**
 * G concatenates z with a learned embedding of the label (the classic cGAN
 * conditioning). The embedding starts at unit scale, as z does: the label then
 * moves G's first layer as much as the latents from the first step, where
 * one-hot rows of a 0.02-scale kernel would barely register.
 */
function buildGenerator(config: CdcganConfig, seed: number, data: DataShape): tf.LayersModel {
  const latents = tf.input({ name: 'g_latents', shape: [config.latentDim] });
  const labels = tf.input({ name: 'g_labels', shape: [data.classes] });
  // A dense layer without bias on a one-hot input is an embedding lookup; as wide as the one-hot it replaces
  // (PyTorch-GAN's cgan does the same): ten classes need no more.
  const embedded = tf.layers
    .dense({ name: 'g_embed', units: data.classes, useBias: false, kernelInitializer: tf.initializers.randomNormal({ mean: 0, stddev: 1, seed: seed + 4 }) })
    .apply(labels) as tf.SymbolicTensor;
  const input = tf.layers.concatenate({ name: 'g_condition' }).apply([latents, embedded]) as tf.SymbolicTensor;
  return tf.model({ name: 'generator', inputs: [latents, labels], outputs: generatorBody(input, config, seed, data) });
}

/**
 * A projection discriminator (Miyato & Koyama 2018): logit = w.phi(x) + b +
 * embed(y).phi(x), with phi(x) DCGAN's flattened features. The label picks a
 * class-specific correction of the linear head; cheaper than feeding ten label
 * planes through the convolutions, and the better-conditioned choice in that paper.
 */
function buildDiscriminator(config: CdcganConfig, seed: number, data: DataShape): tf.LayersModel {
  const images = tf.input({ name: 'd_images', shape: data.imageShape });
  const labels = tf.input({ name: 'd_labels', shape: [data.classes] });
  const features = discriminatorFeatures(images, config, seed);
  const logit = discriminatorDense('d_logit', 1, config, seed + 13).apply(features) as tf.SymbolicTensor;
  // embed(y).phi(x) for every class at once (a kernel column per class embedding), then the label's one
  // picked by a dot with the one-hot: the same function as embedding y first, without a batched
  // 6272-long dot product, which is slow on wasm (it tripled BatchMatMul time at width 64).
  const classScores = discriminatorDense('d_embed', data.classes, config, seed + 14, false).apply(features) as tf.SymbolicTensor;
  const projection = tf.layers.dot({ name: 'd_projection', axes: 1 }).apply([classScores, labels]) as tf.SymbolicTensor;
  const output = tf.layers.add({ name: 'd_output' }).apply([logit, projection]) as tf.SymbolicTensor;
  return tf.model({ name: 'discriminator', inputs: [images, labels], outputs: output });
}

/** One-hot rows for the labels, built in plain JS; a label outside [0, classes) is an error naming the example. */
export function oneHot(labels: Int32Array, classes = CLASSES): tf.Tensor2D {
  const values = new Float32Array(labels.length * classes);
  labels.forEach((label, i) => {
    if (!Number.isInteger(label) || label < 0 || label >= classes) throw new RangeError(`cdcgan: label ${label} of example ${i} is outside [0, ${classes})`);
    values[i * classes + label] = 1;
  });
  return tf.tensor2d(values, [labels.length, classes]);
}

/**
 * DCGAN's trainer with both networks conditioned on the digit: per-example
 * losses, no batch norm, the same latents per example, so data-parallel
 * gradients stay exact.
 */
export class CdcganTrainer extends DcganTrainer<CdcganConfig> {
  constructor(config: CdcganConfig, seed = 0, data: DataShape = { imageShape: dcgan.imageShape, classes: CLASSES }) {
    super(config, seed, data);
  }

  protected override buildNetworks(config: CdcganConfig, seed: number, data: DataShape): GanNetworks {
    return { generator: buildGenerator(config, seed, data), discriminator: buildDiscriminator(config, seed, data) };
  }

  protected override conditions(labels: Int32Array): tf.Tensor[] {
    return [oneHot(labels, this.data.classes)];
  }

  /** The labels asked for, or the classes over and over (0..9 for digits). */
  protected override sampleLabels(count: number, labels?: Int32Array): Int32Array {
    if (!labels) return Int32Array.from({ length: count }, (_, i) => i % this.data.classes);
    if (labels.length !== count) throw new RangeError(`cdcgan: ${count} samples asked for with ${labels.length} labels`);
    return labels.slice();
  }
}

export const cdcgan: ModelSpec<CdcganConfig> = {
  id: 'cdcgan',
  description:
    'Conditional DCGAN (28x28 grey digits by default, any labelled dataset with sides a multiple of 4): label concatenated to z in G, projection discriminator, the dcgan recipe (layer norm in G, spectral norm in D, EMA)',
  defaults: parseConfig(schema, {}),
  parseConfig: (raw, field = 'model.config') => parseConfig(schema, raw, field),
  networkOf: dcgan.networkOf,
  // dcgan's optimizer settings: the conditioning changes neither network's scale.
  networks: structuredClone(dcgan.networks),
  imageShape: dcgan.imageShape,
  classes: CLASSES,
  // Samples from an EMA of the weights, as for dcgan.
  emaDecay: dcgan.emaDecay,
  // DCGAN's trainer, so DCGAN's losses.
  lossNames: dcgan.lossNames,
  createTrainer: (config, data) => new CdcganTrainer(config, 0, data),
  dataShapeError: dcgan.dataShapeError,
};
