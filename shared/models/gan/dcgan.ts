import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../../codec/types.ts';
import { fields, parseConfig, type Schema } from '../../protocol/schema.ts';
import type { Batch, LossAndGrads, ModelSpec, Trainer } from '../types.ts';
import { gaussian } from '../../training/random.ts';

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

/** Canonical tensor names: the layer's own scoped name, stable across processes. */
function namedVariables(model: tf.LayersModel): Map<string, tf.Variable> {
  const named = new Map<string, tf.Variable>();
  for (const weight of model.trainableWeights) named.set(weight.originalName, weight.read() as tf.Variable);
  return named;
}

/** Images in [0, 1] from the data layer become [-1, 1], the range of G's tanh. */
export function imagesToTensor(batch: Batch): tf.Tensor4D {
  return tf.tidy(() => tf.tensor4d(batch.images, [batch.count, ...IMAGE]).mul(2).sub(1) as tf.Tensor4D);
}

export class DcganTrainer implements Trainer {
  readonly generator: tf.LayersModel;
  readonly discriminator: tf.LayersModel;
  readonly shapes: Record<string, number[]> = {};
  private readonly variables = new Map<string, tf.Variable>();
  private readonly generatorVariables: tf.Variable[];
  private readonly discriminatorVariables: tf.Variable[];

  constructor(readonly config: DcganConfig, seed = 0) {
    this.generator = buildGenerator(config, seed);
    this.discriminator = buildDiscriminator(config, seed);
    const g = namedVariables(this.generator);
    const d = namedVariables(this.discriminator);
    for (const [name, variable] of [...g, ...d]) {
      this.variables.set(name, variable);
      this.shapes[name] = variable.shape.slice();
    }
    this.generatorVariables = [...g.values()];
    this.discriminatorVariables = [...d.values()];
  }

  initialWeights(seed: number): NamedArrays {
    const fresh = new DcganTrainer(this.config, seed);
    try {
      return fresh.getWeights();
    } finally {
      fresh.dispose();
    }
  }

  getWeights(): NamedArrays {
    const weights: NamedArrays = {};
    // A copy: the cpu backend hands out its own storage.
    for (const [name, variable] of this.variables) weights[name] = (variable.dataSync() as Float32Array).slice();
    return weights;
  }

  setWeights(weights: NamedArrays): void {
    for (const [name, variable] of this.variables) {
      const values = weights[name];
      if (!values) throw new Error(`setWeights: missing tensor ${name}`);
      // A copy: the cpu backend would otherwise keep the caller's array as its storage.
      tf.tidy(() => variable.assign(tf.tensor(values.slice(), variable.shape)));
    }
  }

  drawNoise(count: number, seed: number): NamedArrays {
    return { latents: gaussian(count * this.config.latentDim, seed) };
  }

  async lossAndGrads(batch: Batch, noise: NamedArrays): Promise<LossAndGrads> {
    const { generator: G, discriminator: D } = this;
    const real = imagesToTensor(batch);
    const latents = tf.tensor2d(noise.latents, [batch.count, this.config.latentDim]);
    // Non-saturating GAN loss: D minimizes softplus(-D(x)) + softplus(D(G(z))), G minimizes softplus(-D(G(z))).
    const dResult = tf.variableGrads(() => {
      const fake = G.apply(latents, { training: true }) as tf.Tensor;
      const realLogits = D.apply(real, { training: true }) as tf.Tensor;
      const fakeLogits = D.apply(fake, { training: true }) as tf.Tensor;
      return tf.add(tf.mean(tf.softplus(tf.neg(realLogits))), tf.mean(tf.softplus(fakeLogits))) as tf.Scalar;
    }, this.discriminatorVariables);
    const gResult = tf.variableGrads(() => {
      const fakeLogits = D.apply(G.apply(latents, { training: true }), { training: true }) as tf.Tensor;
      return tf.mean(tf.softplus(tf.neg(fakeLogits))) as tf.Scalar;
    }, this.generatorVariables);
    const grads: NamedArrays = {};
    try {
      const names = [...this.variables.keys()];
      const tensors = [...this.variables.values()].map((variable) => dResult.grads[variable.name] ?? gResult.grads[variable.name]);
      // A copy: the cpu backend hands out its own storage.
      const values = await Promise.all(tensors.map(async (tensor) => ((await tensor.data()) as Float32Array).slice()));
      names.forEach((name, i) => (grads[name] = values[i]));
      const [d, g] = await Promise.all([dResult.value.data(), gResult.value.data()]);
      return { grads, losses: { d: d[0], g: g[0] } };
    } finally {
      tf.dispose([real, latents, dResult.value, gResult.value, ...Object.values(dResult.grads), ...Object.values(gResult.grads)]);
    }
  }

  async sample(count: number, seed: number): Promise<{ images: Float32Array; labels: Int32Array }> {
    const images = tf.tidy(() => {
      const latents = tf.tensor2d(gaussian(count * this.config.latentDim, seed), [count, this.config.latentDim]);
      return (this.generator.predict(latents) as tf.Tensor).add(1).div(2);
    });
    try {
      return { images: (await images.data()) as Float32Array, labels: new Int32Array(count).fill(-1) };
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
  createTrainer: (config) => new DcganTrainer(config),
};
