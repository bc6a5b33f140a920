import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../../codec/types.ts';
import { fields, parseConfig, type Schema } from '../../protocol/schema.ts';
import type { Batch, LossAndGrads, ModelSpec, Trainer } from '../types.ts';
import { gaussian } from '../../training/random.ts';
import { NamedVariables, readScalars } from '../named-variables.ts';

export interface DcganConfig {
  latentDim: number;
  /** Base channel count; G uses 2w then w, D uses w then 2w. */
  width: number;
  /** Slope of LeakyReLU in both networks. */
  leak: number;
}

const schema: Schema<DcganConfig> = {
  // 64 latent dimensions are plenty for 28x28 digits and keep G's dense layer small.
  latentDim: fields.integer(64, 1, 1024),
  // 64 base channels: the classic DCGAN width scaled to MNIST; ~0.7 M parameters in all.
  width: fields.integer(64, 1, 512),
  // 0.2, the DCGAN paper's slope.
  leak: fields.number(0.2, 0, 1),
};

const IMAGE: [number, number, number] = [28, 28, 1];

/**
 * The networks carry no batch normalization: every example's loss depends on
 * its own inputs only, so the mean gradient over a union batch is exactly the
 * sample-weighted mean of the workers' gradients (data parallelism without
 * cross-worker batch statistics).
 */
function buildGenerator(config: DcganConfig, seed: number): tf.LayersModel {
  const init = (offset: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: seed + offset });
  const w = config.width;
  return tf.sequential({
    name: 'generator',
    layers: [
      tf.layers.dense({ name: 'g_dense', inputShape: [config.latentDim], units: 7 * 7 * 2 * w, kernelInitializer: init(1) }),
      tf.layers.leakyReLU({ name: 'g_act0', alpha: config.leak }),
      tf.layers.reshape({ name: 'g_reshape', targetShape: [7, 7, 2 * w] }),
      tf.layers.conv2dTranspose({ name: 'g_up1', filters: w, kernelSize: 4, strides: 2, padding: 'same', kernelInitializer: init(2) }),
      tf.layers.leakyReLU({ name: 'g_act1', alpha: config.leak }),
      tf.layers.conv2dTranspose({ name: 'g_up2', filters: IMAGE[2], kernelSize: 4, strides: 2, padding: 'same', kernelInitializer: init(3), activation: 'tanh' }),
    ],
  });
}

function buildDiscriminator(config: DcganConfig, seed: number): tf.LayersModel {
  const init = (offset: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: seed + offset });
  const w = config.width;
  return tf.sequential({
    name: 'discriminator',
    layers: [
      tf.layers.conv2d({ name: 'd_conv1', inputShape: IMAGE, filters: w, kernelSize: 4, strides: 2, padding: 'same', kernelInitializer: init(11) }),
      tf.layers.leakyReLU({ name: 'd_act1', alpha: config.leak }),
      tf.layers.conv2d({ name: 'd_conv2', filters: 2 * w, kernelSize: 4, strides: 2, padding: 'same', kernelInitializer: init(12) }),
      tf.layers.leakyReLU({ name: 'd_act2', alpha: config.leak }),
      tf.layers.flatten({ name: 'd_flatten' }),
      tf.layers.dense({ name: 'd_logit', units: 1, kernelInitializer: init(13) }),
    ],
  });
}

/** Images in [0, 1] from the data layer become [-1, 1], the range of G's tanh. */
export function imagesToTensor(batch: Batch): tf.Tensor4D {
  return tf.tidy(() => tf.tensor4d(batch.images, [batch.count, ...IMAGE]).mul(2).sub(1) as tf.Tensor4D);
}

/** The two networks of a GAN. */
export interface GanNetworks {
  generator: tf.LayersModel;
  discriminator: tf.LayersModel;
}

/** A network's input: the main tensor alone, or followed by the conditions. */
function withConditions(main: tf.Tensor, conditions: tf.Tensor[]): tf.Tensor | tf.Tensor[] {
  return conditions.length === 0 ? main : [main, ...conditions];
}

/**
 * DCGAN's trainer. A conditional GAN (cdcgan.ts) reuses it whole and
 * overrides the three protected hooks: its networks, the label inputs they
 * take, and the labels sample() generates.
 */
export class DcganTrainer<Config extends DcganConfig = DcganConfig> implements Trainer {
  readonly generator: tf.LayersModel;
  readonly discriminator: tf.LayersModel;
  readonly shapes: Record<string, number[]>;
  private readonly variables: NamedVariables;

  constructor(
    readonly config: Config,
    seed = 0,
  ) {
    ({ generator: this.generator, discriminator: this.discriminator } = this.buildNetworks(config, seed));
    this.variables = new NamedVariables([this.generator, this.discriminator]);
    this.shapes = this.variables.shapes;
  }

  /** G and D, initialized from `seed`. Called by the constructor: must not read instance fields. */
  protected buildNetworks(config: Config, seed: number): GanNetworks {
    return { generator: buildGenerator(config, seed), discriminator: buildDiscriminator(config, seed) };
  }

  /** The inputs both networks take after latents or images, for these labels: none when unconditional. */
  protected conditions(_labels: Int32Array): tf.Tensor[] {
    return [];
  }

  /** The labels sample() generates and reports: -1 for each, as the images have none. */
  protected sampleLabels(count: number, _labels?: Int32Array): Int32Array {
    return new Int32Array(count).fill(-1);
  }

  initialWeights(seed: number): NamedArrays {
    // The same class as this one, so a subclass gets its own networks.
    const fresh = new (this.constructor as new (config: Config, seed: number) => DcganTrainer<Config>)(this.config, seed);
    try {
      return fresh.getWeights();
    } finally {
      fresh.dispose();
    }
  }

  getWeights(): NamedArrays {
    return this.variables.get();
  }

  setWeights(weights: NamedArrays): void {
    this.variables.set(weights);
  }

  drawNoise(count: number, seed: number): NamedArrays {
    return { latents: gaussian(count * this.config.latentDim, seed) };
  }

  async lossAndGrads(batch: Batch, noise: NamedArrays): Promise<LossAndGrads> {
    const { generator: G, discriminator: D } = this;
    // Conditions first: they check the labels, and nothing is allocated yet if one is refused.
    const conditions = this.conditions(batch.labels);
    const real = imagesToTensor(batch);
    const latents = tf.tensor2d(noise.latents, [batch.count, this.config.latentDim]);
    const generate = () => G.apply(withConditions(latents, conditions), { training: true }) as tf.Tensor;
    const discriminate = (images: tf.Tensor) => D.apply(withConditions(images, conditions), { training: true }) as tf.Tensor;
    // Non-saturating GAN loss: D minimizes softplus(-D(x)) + softplus(D(G(z))), G minimizes softplus(-D(G(z))).
    const dResult = tf.variableGrads(() => {
      const fake = generate();
      const realLogits = discriminate(real);
      const fakeLogits = discriminate(fake);
      return tf.add(tf.mean(tf.softplus(tf.neg(realLogits))), tf.mean(tf.softplus(fakeLogits))) as tf.Scalar;
    }, this.variables.of(D));
    const gResult = tf.variableGrads(() => tf.mean(tf.softplus(tf.neg(discriminate(generate())))) as tf.Scalar, this.variables.of(G));
    try {
      const [grads, losses] = await Promise.all([
        this.variables.read({ ...dResult.grads, ...gResult.grads }),
        readScalars({ d: dResult.value, g: gResult.value }),
      ]);
      return { grads, losses };
    } finally {
      tf.dispose([real, latents, ...conditions, dResult.value, gResult.value, ...Object.values(dResult.grads), ...Object.values(gResult.grads)]);
    }
  }

  async sample(count: number, seed: number, labels?: Int32Array): Promise<{ images: Float32Array; labels: Int32Array }> {
    const used = this.sampleLabels(count, labels);
    const images = tf.tidy(() => {
      const latents = tf.tensor2d(gaussian(count * this.config.latentDim, seed), [count, this.config.latentDim]);
      return (this.generator.predict(withConditions(latents, this.conditions(used))) as tf.Tensor).add(1).div(2);
    });
    try {
      return { images: (await images.data()) as Float32Array, labels: used };
    } finally {
      images.dispose();
    }
  }

  exportModel(): tf.LayersModel {
    return this.generator;
  }

  dispose(): void {
    this.generator.dispose();
    this.discriminator.dispose();
  }
}

export const dcgan: ModelSpec<DcganConfig> = {
  id: 'dcgan',
  description: 'DCGAN for 28x28 grey images, non-saturating loss, no batch norm',
  defaults: parseConfig(schema, {}),
  parseConfig: (raw, field = 'model.config') => parseConfig(schema, raw, field),
  networkOf: (name) => (name.startsWith('g_') ? 'generator' : 'discriminator'),
  networks: {
    // Adam with beta1 0.5 and lr 2e-4: the DCGAN paper's settings, stable for both networks.
    generator: { learningRate: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-8 },
    discriminator: { learningRate: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-8 },
  },
  imageShape: IMAGE,
  classes: 0,
  // GAN samples come from the trained generator itself, as in the DCGAN paper.
  emaDecay: 0,
  // The discriminator's and the generator's losses.
  lossNames: ['d', 'g'],
  createTrainer: (config) => new DcganTrainer(config),
};
