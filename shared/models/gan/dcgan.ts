import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../../codec/types.ts';
import { fields, parseConfig, type Schema } from '../../protocol/schema.ts';
import type { Batch, DataShape, LossAndGrads, ModelSpec, Trainer } from '../types.ts';
import { gaussian } from '../../training/random.ts';
import { NamedVariables, readScalars } from '../named-variables.ts';
import { halvedTwiceError } from '../data-shape.ts';
import { discriminatorDense, discriminatorFeatures, generatorBody, IMAGE, type GanArchitecture } from './blocks.ts';
import { discriminatorGrads, generatorGrads, jointGrads, type GanBatch, type NetworkGrads } from './gan-step.ts';

/** DCGAN's knobs: the architecture blocks.ts builds, and how samples draw their latents. */
export interface DcganConfig extends GanArchitecture {
  /** Samples only (training draws the full normal): latents within ±truncation, 0 for the untruncated normal. */
  truncation: number;
}

export const dcganSchema: Schema<DcganConfig> = {
  // 64 latent dimensions are plenty for 28x28 digits and keep G's dense layer small.
  latentDim: fields.integer(64, 1, 1024),
  // 32 base channels (~0.33 M parameters at the default depths): on 2 cores, 2.5x the steps of width 64 in the same time, and at equal
  // wall time it scored better in the recipe trials (docs/training-runs.md).
  width: fields.integer(32, 1, 512),
  // 0.2, the DCGAN paper's slope.
  leak: fields.number(0.2, 0, 1),
  // Layer norm in G, per example (its hand-written gradient keeps it fast on wasm): G trains steadily without
  // batch statistics, so data parallelism stays exact.
  generatorNorm: fields.oneOf<DcganConfig['generatorNorm']>('layer', ['none', 'pixel', 'layer']),
  // Spectral norm in D bounds its Lipschitz constant: D cannot overpower G early, the failure of the plain recipe.
  discriminatorNorm: fields.oneOf<DcganConfig['discriminatorNorm']>('spectral', ['none', 'spectral']),
  // 2 power iterations from a fixed start per step: stateless (every worker computes the same), and as good as 5 in the trials.
  powerIterations: fields.integer(2, 1, 64),
  // Two strided convolutions (the DCGAN paper's MNIST D) and a third, 3x3 stride 1 at the last grid: at equal CPU time it
  // scored 0.68x the Fréchet distance of two and more recognisable digits (docs/training-runs.md); more add further ones.
  discriminatorDepth: fields.integer(3, 2, 6),
  // Two transposed convolutions (the DCGAN paper's MNIST G) and two more, 3x3 stride 1 at the half grid (14x14), each
  // normalized: 30 minutes of `npm start` reached 82.0% recognisable and 1.69x the Fréchet floor against 77.7% and 1.96x
  // with two (docs/training-runs.md), with fewer steps. 2 is the paper's G; more add further ones.
  generatorDepth: fields.integer(4, 2, 6),
  // 0: D as wide as G (width).
  discriminatorWidth: fields.integer(0, 0, 512),
  // Sampling only: training always draws the full normal.
  truncation: fields.number(0, 0, 16),
};

/**
 * The networks carry no batch normalization: every example's loss depends on
 * its own inputs only, so the mean gradient over a union batch is exactly the
 * sample-weighted mean of the workers' gradients (data parallelism without
 * cross-worker batch statistics).
 */
function buildGenerator(config: DcganConfig, seed: number, data: DataShape): tf.LayersModel {
  const latents = tf.input({ name: 'g_latents', shape: [config.latentDim] });
  return tf.model({ name: 'generator', inputs: latents, outputs: generatorBody(latents, config, seed, data) });
}

function buildDiscriminator(config: DcganConfig, seed: number, data: DataShape): tf.LayersModel {
  const images = tf.input({ name: 'd_images', shape: data.imageShape });
  const logit = discriminatorDense('d_logit', 1, config, seed + 13).apply(discriminatorFeatures(images, config, seed)) as tf.SymbolicTensor;
  return tf.model({ name: 'discriminator', inputs: images, outputs: logit });
}

/** Images in [0, 1] from the data layer become [-1, 1], the range of G's tanh. */
export function imagesToTensor(batch: Batch, imageShape: [number, number, number] = IMAGE): tf.Tensor4D {
  return tf.tidy(
    () =>
      tf
        .tensor4d(batch.images, [batch.count, ...imageShape])
        .mul(2)
        .sub(1) as tf.Tensor4D,
  );
}

/** The networks of a GAN by the names its spec steps them under. */
const GAN_NETWORKS: readonly string[] = ['generator', 'discriminator'];

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
    /** The images' shape and the labels' classes the networks are built for. */
    readonly data: DataShape = { imageShape: IMAGE, classes: 0 },
  ) {
    ({ generator: this.generator, discriminator: this.discriminator } = this.buildNetworks(config, seed, data));
    this.variables = new NamedVariables([this.generator, this.discriminator]);
    this.shapes = this.variables.shapes;
  }

  /** G and D for `data`, initialized from `seed`. Called by the constructor: must not read instance fields. */
  protected buildNetworks(config: Config, seed: number, data: DataShape): GanNetworks {
    return { generator: buildGenerator(config, seed, data), discriminator: buildDiscriminator(config, seed, data) };
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
    const fresh = new (this.constructor as new (config: Config, seed: number, data: DataShape) => DcganTrainer<Config>)(this.config, seed, this.data);
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

  /**
   * Losses and gradients of both networks, or of those in `networks` only
   * (a round that steps one network of the two needs no gradient for the other).
   */
  async lossAndGrads(batch: Batch, noise: NamedArrays, networks: readonly string[] = GAN_NETWORKS): Promise<LossAndGrads> {
    const { generator: G, discriminator: D } = this;
    const unknown = networks.filter((network) => !GAN_NETWORKS.includes(network));
    if (unknown.length > 0) throw new RangeError(`${this.constructor.name}: no network named ${unknown.join(', ')}`);
    // Conditions first: they check the labels, and nothing is allocated yet if one is refused.
    const conditions = this.conditions(batch.labels);
    const real = imagesToTensor(batch, this.data.imageShape);
    const latents = tf.tensor2d(noise.latents, [batch.count, this.config.latentDim]);
    const batchPass: GanBatch = {
      real,
      generate: () => G.apply(withConditions(latents, conditions), { training: true }) as tf.Tensor,
      discriminate: (images) => D.apply(withConditions(images, conditions), { training: true }) as tf.Tensor,
      discriminateTwice: (images) =>
        D.apply(
          withConditions(
            images,
            conditions.map((c) => tf.concat([c, c])),
          ),
          { training: true },
        ) as tf.Tensor,
      discriminatorVariables: this.variables.of(D),
      generatorVariables: this.variables.of(G),
    };
    const results: { loss: string; model: tf.LayersModel; result: NetworkGrads }[] = [];
    try {
      const wantD = networks.includes('discriminator');
      const wantG = networks.includes('generator');
      if (wantD && wantG) {
        const joint = jointGrads(batchPass);
        results.push({ loss: 'd', model: D, result: joint.discriminator }, { loss: 'g', model: G, result: joint.generator });
      } else if (wantD) {
        results.push({ loss: 'd', model: D, result: discriminatorGrads(batchPass) });
      } else if (wantG) {
        results.push({ loss: 'g', model: G, result: generatorGrads(batchPass) });
      }
      const [grads, losses] = await Promise.all([
        this.variables.read(
          Object.assign({}, ...results.map(({ result }) => result.grads)),
          results.map(({ model }) => model),
        ),
        readScalars(Object.fromEntries(results.map(({ loss, result }) => [loss, result.value]))),
      ]);
      return { grads, losses };
    } finally {
      tf.dispose([real, latents, ...conditions, ...results.flatMap(({ result }) => [result.value, ...Object.values(result.grads)])]);
    }
  }

  async sample(count: number, seed: number, labels?: Int32Array): Promise<{ images: Float32Array; labels: Int32Array }> {
    const used = this.sampleLabels(count, labels);
    const images = tf.tidy(() => {
      const bound = this.config.truncation > 0 ? this.config.truncation : Infinity;
      const latents = tf.tensor2d(gaussian(count * this.config.latentDim, seed, bound), [count, this.config.latentDim]);
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
  description:
    'DCGAN (28x28 grey by default, any shape the dataset gives with sides a multiple of 4), non-saturating loss, layer norm in G, spectral norm in D, EMA of G for sampling',
  defaults: parseConfig(dcganSchema, {}),
  parseConfig: (raw, field = 'model.config') => parseConfig(dcganSchema, raw, field),
  networkOf: (name) => (name.startsWith('g_') ? 'generator' : 'discriminator'),
  networks: {
    // Adam at lr 1e-3 for the global batch of 64 (referenceBatch): with spectral norm in D, 5x the DCGAN paper's 2e-4
    // is stable and scored best at equal wall time in the recipe trials (2e-4, 5e-4, 1e-3). beta1 0 and beta2 0.99
    // (as in SNGAN and StyleGAN) rather than the paper's 0.5 / 0.999: without momentum the iterates circle the
    // equilibrium more tightly and their EMA lands nearer it: 0.61x the Fréchet distance of 0.5 / 0.999 at equal CPU
    // time (bench/recipe.ts, docs/training-runs.md), the raw weights alike.
    generator: { learningRate: 1e-3, beta1: 0, beta2: 0.99, epsilon: 1e-8 },
    discriminator: { learningRate: 1e-3, beta1: 0, beta2: 0.99, epsilon: 1e-8 },
  },
  imageShape: IMAGE,
  classes: 0,
  // Samples and exports come from an EMA of the weights (G's is what matters): it averages out the oscillation of
  // GAN training, and the trials scored it above the raw weights at every point past the first minutes.
  emaDecay: 0.999,
  // The discriminator's and the generator's losses.
  lossNames: ['d', 'g'],
  createTrainer: (config, data) => new DcganTrainer(config, 0, data),
  dataShapeError: halvedTwiceError,
};
