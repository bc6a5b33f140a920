import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../../codec/types.ts';
import { fields, parseConfig, type Schema } from '../../protocol/schema.ts';
import { gaussian } from '../../training/random.ts';
import { NamedVariables, readScalars } from '../named-variables.ts';
import { halvedTwiceError, pixelsOf, quarterGrid } from '../data-shape.ts';
import type { Batch, DataShape, LossAndGrads, ModelSpec, Trainer } from '../types.ts';

export interface VaeConfig {
  latentDim: number;
  /** Base channel count; the encoder uses w then 2w, the decoder 2w then w. */
  width: number;
  /** Weight of the KL term (beta-VAE); 1 is the plain evidence lower bound. */
  beta: number;
}

const schema: Schema<VaeConfig> = {
  // 16 dimensions: enough for sharp MNIST reconstructions, few enough that prior samples still look like digits.
  latentDim: fields.integer(16, 1, 1024),
  // 32 base channels, as in Keras's convolutional VAE for MNIST; ~0.2 M parameters in all.
  width: fields.integer(32, 1, 512),
  // 1: the true ELBO. Above 1 trades reconstruction for a smoother latent space.
  beta: fields.number(1, 0, 1000),
};

/** The shape it is built for when no dataset says otherwise: MNIST's. */
const IMAGE: [number, number, number] = [28, 28, 1];

/** Encoder and decoder; `decoderLogits` and `decoder` share every layer, the latter adds the sigmoid. */
interface VaeNetworks {
  encoder: tf.LayersModel;
  decoderLogits: tf.LayersModel;
  decoder: tf.LayersModel;
}

/**
 * No batch normalization, as in dcgan: each example's loss depends on its
 * own image and noise only, so the mean gradient over a union batch is the
 * sample-weighted mean of the workers' gradients.
 */
function buildNetworks(config: VaeConfig, seed: number, data: DataShape): VaeNetworks {
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: seed + offset });
  const w = config.width;
  // 4x4 kernels at stride 2: divisible by the stride, so the transposed convolutions make no checkerboard.
  const conv = { kernelSize: 4, strides: 2, padding: 'same' as const, activation: 'relu' as const };

  const images = tf.input({ name: 'enc_images', shape: data.imageShape });
  let x = tf.layers.conv2d({ name: 'enc_conv1', filters: w, ...conv, kernelInitializer: init(1) }).apply(images) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'enc_conv2', filters: 2 * w, ...conv, kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'enc_flatten' }).apply(x) as tf.SymbolicTensor;
  // One head for the posterior's mean and log-variance, split after: [mean | logVariance].
  const moments = tf.layers.dense({ name: 'enc_moments', units: 2 * config.latentDim, kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  const encoder = tf.model({ name: 'encoder', inputs: images, outputs: moments });

  const latents = tf.input({ name: 'dec_latents', shape: [config.latentDim] });
  // From a grid a quarter of the image's size (7x7 for 28x28, 8x8 for 32x32), up twice.
  const [rows, columns] = quarterGrid(data);
  let y = tf.layers
    .dense({ name: 'dec_dense', units: rows * columns * 2 * w, activation: 'relu', kernelInitializer: init(4) })
    .apply(latents) as tf.SymbolicTensor;
  y = tf.layers.reshape({ name: 'dec_reshape', targetShape: [rows, columns, 2 * w] }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.conv2dTranspose({ name: 'dec_up1', filters: w, ...conv, kernelInitializer: init(5) }).apply(y) as tf.SymbolicTensor;
  const logits = tf.layers
    .conv2dTranspose({ name: 'dec_up2', filters: data.imageShape[2], ...conv, activation: 'linear', kernelInitializer: init(6) })
    .apply(y) as tf.SymbolicTensor;
  const pixels = tf.layers.activation({ name: 'dec_pixels', activation: 'sigmoid' }).apply(logits) as tf.SymbolicTensor;
  return {
    encoder,
    // Training reads logits: cross-entropy from logits stays finite where sigmoid saturates.
    decoderLogits: tf.model({ name: 'decoder_logits', inputs: latents, outputs: logits }),
    decoder: tf.model({ name: 'decoder', inputs: latents, outputs: pixels }),
  };
}

/** Binary cross-entropy of targets in [0, 1] against logits, per element, in the stable form max(l, 0) - l t + log(1 + e^-|l|). */
function crossEntropyWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  return tf
    .relu(logits)
    .sub(logits.mul(targets))
    .add(tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
}

/**
 * A convolutional VAE trained as one network: the ELBO is a single objective
 * over encoder and decoder together, so one Adam serves both (Adam is
 * per-element: two optimizers with equal settings would take the very same step).
 */
export class VaeTrainer implements Trainer {
  readonly encoder: tf.LayersModel;
  /** The decoder with its sigmoid: latents -> pixels in [0, 1]. */
  readonly decoder: tf.LayersModel;
  readonly shapes: Record<string, number[]>;
  private readonly decoderLogits: tf.LayersModel;
  private readonly variables: NamedVariables;

  constructor(
    readonly config: VaeConfig,
    seed = 0,
    /** The images' shape the networks are built for (the labels are not used). */
    readonly data: DataShape = { imageShape: IMAGE, classes: 0 },
  ) {
    ({ encoder: this.encoder, decoder: this.decoder, decoderLogits: this.decoderLogits } = buildNetworks(config, seed, data));
    this.variables = new NamedVariables([this.encoder, this.decoderLogits]);
    this.shapes = this.variables.shapes;
  }

  initialWeights(seed: number): NamedArrays {
    const fresh = new VaeTrainer(this.config, seed, this.data);
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

  /** epsilon of the reparameterisation z = mean + sigma * epsilon, one row per example. */
  drawNoise(count: number, seed: number): NamedArrays {
    return { epsilon: gaussian(count * this.config.latentDim, seed) };
  }

  async lossAndGrads(batch: Batch, noise: NamedArrays): Promise<LossAndGrads> {
    // In one tidy: if either shape is wrong, the other tensor is freed.
    const [images, epsilon] = tf.tidy(() => [
      tf.tensor4d(batch.images, [batch.count, ...this.data.imageShape]),
      tf.tensor2d(noise.epsilon, [batch.count, this.config.latentDim]),
    ]);
    let reconstruction: tf.Scalar | undefined;
    let kl: tf.Scalar | undefined;
    const result = tf.variableGrads(
      () => {
        const [mean, logVariance] = tf.split(this.encoder.apply(images, { training: true }) as tf.Tensor2D, 2, 1);
        const latents = mean.add(tf.exp(logVariance.mul(0.5)).mul(epsilon));
        const logits = this.decoderLogits.apply(latents, { training: true }) as tf.Tensor4D;
        // Sums over pixels and latent dimensions, means over the batch: the union's loss is the workers' weighted mean.
        const reconstructionMean = tf.mean(tf.sum(crossEntropyWithLogits(logits, images), [1, 2, 3])) as tf.Scalar;
        // KL(N(mean, sigma^2) || N(0, I)) in closed form.
        const klMean = tf.mean(tf.sum(mean.square().add(tf.exp(logVariance)).sub(1).sub(logVariance), 1).mul(0.5)) as tf.Scalar;
        // Kept past the gradient's tidy, to be reported.
        reconstruction = tf.keep(reconstructionMean);
        kl = tf.keep(klMean);
        return reconstructionMean.add(klMean.mul(this.config.beta)) as tf.Scalar;
      },
      this.variables.of(this.encoder).concat(this.variables.of(this.decoderLogits)),
    );
    try {
      const [grads, losses] = await Promise.all([
        this.variables.read(result.grads),
        readScalars({ reconstruction: reconstruction!, kl: kl!, loss: result.value }),
      ]);
      return { grads, losses };
    } finally {
      tf.dispose([images, epsilon, reconstruction!, kl!, result.value, ...Object.values(result.grads)]);
    }
  }

  /** Decodes `count` latents drawn from the prior N(0, I). */
  async sample(count: number, seed: number): Promise<{ images: Float32Array; labels: Int32Array }> {
    const images = tf.tidy(() => this.decoder.predict(tf.tensor2d(gaussian(count * this.config.latentDim, seed), [count, this.config.latentDim])) as tf.Tensor);
    try {
      return { images: (await images.data()) as Float32Array, labels: new Int32Array(count).fill(-1) };
    } finally {
      images.dispose();
    }
  }

  /**
   * Reconstructions in [0, 1] of images in [0, 1] (NHWC, of the data's shape),
   * decoded from the posterior mean: the deterministic picture of what the
   * model keeps of each image.
   */
  async reconstruct(images: Float32Array): Promise<Float32Array> {
    const pixelCount = pixelsOf(this.data);
    if (images.length === 0 || images.length % pixelCount !== 0) {
      throw new RangeError(`vae.reconstruct: expected a whole number of ${this.data.imageShape.join('x')} images, got ${images.length} values`);
    }
    const count = images.length / pixelCount;
    const pixels = tf.tidy(() => {
      const moments = this.encoder.predict(tf.tensor4d(images, [count, ...this.data.imageShape])) as tf.Tensor2D;
      return this.decoder.predict(moments.slice([0, 0], [count, this.config.latentDim])) as tf.Tensor;
    });
    try {
      return (await pixels.data()) as Float32Array;
    } finally {
      pixels.dispose();
    }
  }

  /** The decoder, latents -> pixels in [0, 1] (the GANs' generators give [-1, 1]). */
  exportModel(): tf.LayersModel {
    return this.decoder;
  }

  dispose(): void {
    this.encoder.dispose();
    // decoderLogits's layers are all the decoder's: disposing the decoder frees them.
    this.decoder.dispose();
  }
}

export const vae: ModelSpec<VaeConfig> = {
  id: 'vae',
  description:
    'Convolutional VAE (28x28 grey by default, any shape the dataset gives with sides a multiple of 4): Bernoulli decoder, Gaussian posterior, KL weight beta',
  defaults: parseConfig(schema, {}),
  parseConfig: (raw, field = 'model.config') => parseConfig(schema, raw, field),
  networkOf: () => 'vae',
  networks: {
    // Adam at 1e-3 with the usual betas: Kingma & Ba's defaults, what VAEs are commonly trained with.
    vae: { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  },
  imageShape: IMAGE,
  classes: 0,
  // Samples come from the trained decoder itself; an EMA pays off for diffusion models, not needed here.
  emaDecay: 0,
  // The loss it trains on, and its two terms.
  lossNames: ['reconstruction', 'kl', 'loss'],
  createTrainer: (config, data) => new VaeTrainer(config, 0, data),
  dataShapeError: halvedTwiceError,
};
