import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../../codec/types.ts';
import { parseConfig } from '../../protocol/schema.ts';
import { createRandom, deriveSeed, gaussian } from '../../training/random.ts';
import { NamedVariables, readScalars } from '../named-variables.ts';
import { halvedTwiceError } from '../data-shape.ts';
import type { Batch, LossAndGrads, ModelSpec, Trainer } from '../types.ts';
import { cddpmSchema, ddpmSchema, type CddpmConfig, type DdpmConfig, type GuidanceConfig } from './config.ts';
import { labelOneHot, noisedImages, timestepEmbedding } from './inputs.ts';
import { ddimSample, ddpmSample, guide, type EpsilonModel } from './sampler.ts';
import { makeSchedule, type NoiseSchedule } from './schedule.ts';
import { buildUnet } from './unet.ts';

/** The shape both families are built for when no dataset says otherwise: MNIST's. */
const IMAGE: [number, number, number] = [28, 28, 1];
/** MNIST's ten digits: the classes `cddpm` is conditioned on when no dataset says otherwise. */
const CLASSES = 10;
const UINT32_RANGE = 4294967296;

/** Class conditioning of a trainer: how many classes, and the guidance settings. */
export interface Conditioning extends GuidanceConfig {
  classes: number;
}

/**
 * The label of each row of one network call under guidance scale w: w = 1
 * needs ε_cond only, w = 0 ε_uncond only ("no label", -1); otherwise both,
 * in one batch, labelled rows first.
 */
function guidanceRows(labels: Int32Array, guidance: number): Int32Array {
  const unlabelled = labels.map(() => -1);
  if (guidance === 1) return labels;
  if (guidance === 0) return unlabelled;
  return Int32Array.from([...labels, ...unlabelled]);
}

/**
 * A denoising diffusion model: a U-Net trained to predict the noise ε added
 * to an image at a random step t. Every example's loss depends on its own
 * image, step and noise only, so the batch-mean loss of a union batch is the
 * sample-weighted mean of the workers' losses, and so are the gradients.
 */
export class DdpmTrainer implements Trainer {
  readonly unet: tf.LayersModel;
  readonly schedule: NoiseSchedule;
  readonly shapes: Record<string, number[]>;
  private readonly variables: NamedVariables;
  /** Values per image. */
  private readonly pixels: number;

  constructor(
    readonly config: DdpmConfig,
    readonly conditioning: Conditioning | undefined,
    seed = 0,
    readonly imageShape: [number, number, number] = IMAGE,
  ) {
    this.unet = buildUnet({ ...config, classes: conditioning?.classes ?? 0, imageShape }, seed);
    this.pixels = imageShape[0] * imageShape[1] * imageShape[2];
    this.schedule = makeSchedule(config.schedule, config.timesteps);
    this.variables = new NamedVariables([this.unet]);
    this.shapes = this.variables.shapes;
  }

  initialWeights(seed: number): NamedArrays {
    const fresh = new DdpmTrainer(this.config, this.conditioning, seed, this.imageShape);
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

  /**
   * Per example: a step index uniform in [0, T) (stored as float32), the
   * noise ε (one value per pixel: 784 for MNIST), and for conditional models `dropLabel`, 1 where the
   * label is replaced by "no label". Each from its own stream of the seed.
   */
  drawNoise(count: number, seed: number): NamedArrays {
    const steps = this.config.timesteps;
    const nextStep = createRandom(deriveSeed(seed, 1));
    const timesteps = new Float32Array(count);
    for (let i = 0; i < count; i++) timesteps[i] = Math.floor((nextStep() / UINT32_RANGE) * steps);
    const drawn: NamedArrays = { timesteps, noise: gaussian(count * this.pixels, deriveSeed(seed, 2)) };
    if (this.conditioning) {
      const nextDrop = createRandom(deriveSeed(seed, 3));
      const dropLabel = new Float32Array(count);
      for (let i = 0; i < count; i++) dropLabel[i] = nextDrop() / UINT32_RANGE < this.conditioning.labelDropout ? 1 : 0;
      drawn.dropLabel = dropLabel;
    }
    return drawn;
  }

  /** The network's inputs for noised images at the given steps (and labels, when conditional). */
  private inputs(images: Float32Array, timesteps: ArrayLike<number>, labels?: Float32Array): tf.Tensor[] {
    const count = timesteps.length;
    const inputs = [
      tf.tensor4d(images, [count, ...this.imageShape]),
      tf.tensor2d(timestepEmbedding(timesteps, this.config.timeEmbeddingDim), [count, this.config.timeEmbeddingDim]),
    ];
    if (this.conditioning) inputs.push(tf.tensor2d(labels!, [count, this.conditioning.classes + 1]));
    return inputs;
  }

  private checkNoise(noise: NamedArrays, count: number): void {
    const expected: Record<string, number> = { timesteps: count, noise: count * this.pixels };
    if (this.conditioning) expected.dropLabel = count;
    for (const [name, length] of Object.entries(expected)) {
      if (noise[name]?.length !== length) throw new Error(`lossAndGrads: noise.${name} should hold ${length} values, got ${noise[name]?.length ?? 'none'}`);
    }
    const steps = this.config.timesteps;
    noise.timesteps.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= steps) throw new Error(`lossAndGrads: noise.timesteps[${i}] should be a step in [0, ${steps}), got ${t}`);
    });
  }

  async lossAndGrads(batch: Batch, noise: NamedArrays): Promise<LossAndGrads> {
    this.checkNoise(noise, batch.count);
    const { timesteps, noise: epsilon } = noise;
    const labels = this.conditioning ? labelOneHot(batch.labels, this.conditioning.classes, noise.dropLabel) : undefined;
    const inputs = this.inputs(noisedImages(batch.images, timesteps, epsilon, this.schedule), timesteps, labels);
    const target = tf.tensor4d(epsilon, [batch.count, ...this.imageShape]);
    // The mean over examples and pixels: a union batch's loss is the sample-weighted mean of its parts'.
    const result = tf.variableGrads(
      () => tf.mean(tf.squaredDifference(this.unet.apply(inputs, { training: true }) as tf.Tensor, target)) as tf.Scalar,
      this.variables.of(this.unet),
    );
    try {
      const [grads, losses] = await Promise.all([this.variables.read(result.grads), readScalars({ mse: result.value })]);
      return { grads, losses };
    } finally {
      tf.dispose([...inputs, target, result.value, ...Object.values(result.grads)]);
    }
  }

  /** The labels a sample is generated for: the given ones, or the classes in turn; -1 when unconditional. */
  private sampleLabels(count: number, labels?: Int32Array): Int32Array {
    if (!this.conditioning) return new Int32Array(count).fill(-1);
    const classes = this.conditioning.classes;
    if (!labels) return Int32Array.from({ length: count }, (_, i) => i % classes);
    if (labels.length !== count) throw new Error(`sample: expected ${count} labels, got ${labels.length}`);
    labels.forEach((label, i) => {
      if (!Number.isInteger(label) || label < 0 || label >= classes) throw new Error(`sample: labels[${i}] should be a class in [0, ${classes}), got ${label}`);
    });
    return labels.slice();
  }

  /** The network's ε at step t for every example, with classifier-free guidance when conditional. */
  private epsilonModel(labels: Int32Array): EpsilonModel {
    const count = labels.length;
    const guidance = this.conditioning?.guidanceScale ?? 1;
    const rows = this.conditioning ? guidanceRows(labels, guidance) : labels;
    const oneHot = this.conditioning ? labelOneHot(rows, this.conditioning.classes) : undefined;
    return async (x, t) => {
      const images = new Float32Array(rows.length * this.pixels);
      images.set(x);
      if (rows.length > count) images.set(x, count * this.pixels);
      const predicted = tf.tidy(() => this.unet.apply(this.inputs(images, new Float32Array(rows.length).fill(t), oneHot)) as tf.Tensor);
      let epsilon: Float32Array;
      try {
        epsilon = (await predicted.data()) as Float32Array;
      } finally {
        predicted.dispose();
      }
      // A timer's turn between network evaluations, with no tensor held across it: reading the result resolves without
      // one, so a 50-step sample would hold the thread for seconds. The coordinator draws its grids on its event loop (a
      // ddpm grid held the round's updates for ~6.5 s every 25 rounds), and a tab's page stays responsive while it samples.
      await new Promise<void>((resolve) => setTimeout(resolve, 0));
      // data() gave a copy of its own: returned as is.
      if (rows.length === count) return epsilon;
      const size = count * this.pixels;
      return guide(epsilon.subarray(0, size), epsilon.subarray(size), guidance);
    };
  }

  async sample(count: number, seed: number, labels?: Int32Array): Promise<{ images: Float32Array; labels: Int32Array }> {
    const used = this.sampleLabels(count, labels);
    const epsilonModel = this.epsilonModel(used);
    const start = gaussian(count * this.pixels, deriveSeed(seed, 1));
    const options = { clipDenoised: true };
    const x0 =
      this.config.sampler === 'ddim'
        ? await ddimSample(epsilonModel, start, this.schedule, this.config.samplingSteps, options)
        : await ddpmSample(epsilonModel, start, this.schedule, (t) => gaussian(count * this.pixels, deriveSeed(seed, 2, t)), options);
    const images = new Float32Array(x0.length);
    for (let i = 0; i < x0.length; i++) images[i] = Math.min(1, Math.max(0, (x0[i] + 1) / 2));
    return { images, labels: used };
  }

  /** The U-Net. Its inputs: the noised image, the sinusoidal embedding of t (see inputs.ts), and the label one-hot when conditional. */
  exportModel(): tf.LayersModel {
    return this.unet;
  }

  dispose(): void {
    this.unet.dispose();
  }
}

/**
 * The denoiser's Adam: the usual betas (no GAN game to damp), lr 1e-3. The DDPM paper's 2e-4 is for 800k steps; in the
 * runs a 2-core machine allows, 1e-3 learns several times faster at equal samples (docs/training-runs.md: 30.8% of
 * samples recognisable after 61k samples where 2e-4 had 19.2% after 63k, 60.8% after 243k). Its loss stayed steady for
 * 8,955 steps, then diverged: such a job pauses itself (runner.ts), and going on from its EMA at 2.5e-4
 * (model.initFrom) took it from 75% to 81.2% over 15,000 more steps.
 */
const DENOISER_ADAM = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
// 0.999 over steps: DDPM samples from an EMA of the weights (the paper uses 0.9999 over 800k steps; runs here are shorter).
const EMA_DECAY = 0.999;

export const ddpm: ModelSpec<DdpmConfig> = {
  id: 'ddpm',
  description:
    'DDPM (28x28 grey by default, any shape the dataset gives with sides a multiple of 4): small U-Net ε-predictor, no normalization layers, DDIM or ancestral sampling',
  defaults: parseConfig(ddpmSchema, {}),
  parseConfig: (raw, field = 'model.config') => parseConfig(ddpmSchema, raw, field),
  networkOf: () => 'denoiser',
  networks: { denoiser: DENOISER_ADAM },
  imageShape: IMAGE,
  classes: 0,
  emaDecay: EMA_DECAY,
  // The noise prediction's mean squared error.
  lossNames: ['mse'],
  createTrainer: (config, data) => new DdpmTrainer(config, undefined, 0, data?.imageShape),
  dataShapeError: halvedTwiceError,
};

export const cddpm: ModelSpec<CddpmConfig> = {
  id: 'cddpm',
  description:
    'Class-conditional DDPM (28x28 grey digits by default, any labelled dataset with sides a multiple of 4) with classifier-free guidance (label dropout during training)',
  defaults: parseConfig(cddpmSchema, {}),
  parseConfig: (raw, field = 'model.config') => parseConfig(cddpmSchema, raw, field),
  networkOf: () => 'denoiser',
  networks: { denoiser: DENOISER_ADAM },
  imageShape: IMAGE,
  classes: CLASSES,
  emaDecay: EMA_DECAY,
  lossNames: ddpm.lossNames,
  createTrainer: (config, data = { imageShape: IMAGE, classes: CLASSES }) =>
    new DdpmTrainer(config, { classes: data.classes, labelDropout: config.labelDropout, guidanceScale: config.guidanceScale }, 0, data.imageShape),
  dataShapeError: halvedTwiceError,
};
