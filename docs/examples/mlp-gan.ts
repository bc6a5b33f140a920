/**
 * A model family of your own, as a module: a GAN whose generator and
 * discriminator are multilayer perceptrons. Run it with
 *
 *   npm start -- --model-module docs/examples/mlp-gan.ts --set id=mlp --set model.id=mlp-gan
 *
 * The coordinator loads it, checks it keeps the contract data parallelism
 * needs (docs/model-modules.md), passes it to its local workers and bundles it
 * into the browser tabs' worker. Remote Node workers take the same flag.
 *
 * It reuses DCGAN's trainer (losses, gradients, sampling, export) and
 * replaces only its networks: the hook `buildNetworks`. Layer names decide
 * which optimizer steps a weight: `g_` for the generator, anything else for
 * the discriminator (`networkOf` below).
 */
import * as tf from '@tensorflow/tfjs';
import { dcgan, DcganTrainer, type DcganConfig, type GanNetworks } from '../../shared/models/gan/dcgan.ts';
import type { ModelSpec } from '../../shared/models/types.ts';
import { fields, parseConfig, type Schema } from '../../shared/protocol/schema.ts';

/** DCGAN's knobs (the trainer reads latentDim) and the width of the hidden layers. */
export interface MlpGanConfig extends DcganConfig {
  hidden: number;
}

const schema: Schema<MlpGanConfig> = {
  latentDim: fields.integer(64, 1, 1024),
  hidden: fields.integer(256, 8, 4096),
  leak: fields.number(0.2, 0, 1),
  // DCGAN's convolution knobs: unused by these networks, kept so DCGAN's trainer takes the config as its own.
  width: fields.integer(32, 1, 512),
  generatorNorm: fields.oneOf<MlpGanConfig['generatorNorm']>('none', ['none']),
  discriminatorNorm: fields.oneOf<MlpGanConfig['discriminatorNorm']>('none', ['none']),
  powerIterations: fields.integer(1, 1, 1),
  // How DCGAN's trainer draws the latents of samples: 0, the untruncated normal.
  truncation: fields.number(0, 0, 16),
};

const IMAGE: [number, number, number] = [28, 28, 1];
const PIXELS = IMAGE[0] * IMAGE[1] * IMAGE[2];

const initializer = (seed: number, offset: number) => tf.initializers.glorotUniform({ seed: seed * 101 + offset });

/** G: latents -> hidden -> 784 pixels in [-1, 1] (tanh, the range DCGAN's trainer scales images to). */
export function mlpGenerator(config: MlpGanConfig, seed: number): tf.LayersModel {
  const init = (offset: number) => initializer(seed, offset);
  const latents = tf.input({ name: 'g_latents', shape: [config.latentDim] });
  let h = tf.layers.dense({ name: 'g_hidden', units: config.hidden, kernelInitializer: init(1) }).apply(latents) as tf.SymbolicTensor;
  h = tf.layers.leakyReLU({ name: 'g_act', alpha: config.leak }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.dense({ name: 'g_pixels', units: PIXELS, activation: 'tanh', kernelInitializer: init(2) }).apply(h) as tf.SymbolicTensor;
  const image = tf.layers.reshape({ name: 'g_image', targetShape: IMAGE }).apply(h) as tf.SymbolicTensor;
  return tf.model({ name: 'generator', inputs: latents, outputs: image });
}

/** D: image -> hidden -> one logit. */
export function mlpDiscriminator(config: MlpGanConfig, seed: number): tf.LayersModel {
  const init = (offset: number) => initializer(seed, offset);
  // Every example's logit depends on its own image only: no statistic across the batch (no batch norm).
  const images = tf.input({ name: 'd_images', shape: IMAGE });
  let d = tf.layers.flatten({ name: 'd_flat' }).apply(images) as tf.SymbolicTensor;
  d = tf.layers.dense({ name: 'd_hidden', units: config.hidden, kernelInitializer: init(3) }).apply(d) as tf.SymbolicTensor;
  d = tf.layers.leakyReLU({ name: 'd_act', alpha: config.leak }).apply(d) as tf.SymbolicTensor;
  const logit = tf.layers.dense({ name: 'd_logit', units: 1, kernelInitializer: init(4) }).apply(d) as tf.SymbolicTensor;
  return tf.model({ name: 'discriminator', inputs: images, outputs: logit });
}

class MlpGanTrainer extends DcganTrainer<MlpGanConfig> {
  /** Called by the constructor: builds both networks from the config, seeded, and reads no instance field. */
  protected override buildNetworks(config: MlpGanConfig, seed: number): GanNetworks {
    return { generator: mlpGenerator(config, seed), discriminator: mlpDiscriminator(config, seed) };
  }
}

const spec: ModelSpec<MlpGanConfig> = {
  id: 'mlp-gan',
  description: 'A GAN of two multilayer perceptrons for 28x28 grey images (an example model module)',
  defaults: parseConfig(schema, {}),
  parseConfig: (raw, field = 'model.config') => parseConfig(schema, raw, field),
  networkOf: (name) => (name.startsWith('g_') ? 'generator' : 'discriminator'),
  // DCGAN's optimizer settings and losses; no moving average of the weights.
  networks: structuredClone(dcgan.networks),
  imageShape: IMAGE,
  classes: 0,
  emaDecay: 0,
  lossNames: dcgan.lossNames,
  createTrainer: (config) => new MlpGanTrainer(config),
};

export default spec;
