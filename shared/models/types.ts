import type { NamedArrays } from '../codec/types.ts';

/** A batch of examples as the data layer hands it to a model. */
export interface Batch {
  /** Pixels in [0, 1], `count * height * width * channels` values, NHWC. */
  images: Float32Array;
  /** Class labels, one per example (conditional models use them). */
  labels: Int32Array;
  count: number;
}

export interface LossAndGrads {
  /** Gradients by canonical tensor name, averaged over the batch. */
  grads: NamedArrays;
  /** Losses by name, averaged over the batch. */
  losses: Record<string, number>;
}

/** Per-network optimizer settings; each network steps its own optimizer. */
export interface OptimizerConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/**
 * The compute side of a model family on one runtime: holds its networks,
 * takes weights by name, and computes losses and gradients.
 */
export interface Trainer {
  /** Canonical name -> shape of every trainable tensor, in a stable order. */
  readonly shapes: Record<string, number[]>;
  /** Weights drawn from the model's initializers with this seed. */
  initialWeights(seed: number): NamedArrays;
  setWeights(weights: NamedArrays): void;
  /**
   * The random inputs of one step for `count` examples (latents, timesteps,
   * noise), by name, one row per example: split or concatenated along the
   * first axis, they serve any split of the batch. Drawn in plain JS, so
   * identical on every backend.
   */
  drawNoise(count: number, seed: number): NamedArrays;
  /**
   * Losses and gradients of every network at the current weights, on `batch`
   * with its noise. Async: results are read back without blocking (WebGPU
   * reads synchronously only slowly, and not at all in some browsers).
   * A trainer of several networks may take `networks`, the ones a round
   * steps, and compute only their gradients (and losses).
   */
  lossAndGrads(batch: Batch, noise: NamedArrays, networks?: readonly string[]): Promise<LossAndGrads>;
  /**
   * `count` generated images in [0, 1], NHWC, with the labels used.
   * Conditional models generate the given labels (or cycle through the
   * classes when none are given); unconditional ones ignore them and report -1.
   */
  sample(count: number, seed: number, labels?: Int32Array): Promise<{ images: Float32Array; labels: Int32Array }>;
  /** Autoencoders: the model's reconstructions of `images` (NHWC, [0, 1]), for a grid beside the originals. */
  reconstruct?(images: Float32Array): Promise<Float32Array>;
  /** The generator (or decoder) as a tfjs LayersModel, for export. */
  exportModel(): import('@tensorflow/tfjs').LayersModel;
  dispose(): void;
}

/**
 * What a model takes from the dataset it trains on: the shape of its images
 * (G's output and D's input follow it) and the classes of its labels (what a
 * conditional family is conditioned on).
 */
export interface DataShape {
  /** [height, width, channels], pixels in [0, 1]. */
  readonly imageShape: [number, number, number];
  /** Classes the labels run over; 0 for an unlabelled set. */
  readonly classes: number;
}

/** A model family, looked up by the id that travels in messages. */
export interface ModelSpec<Config extends object = Record<string, unknown>> {
  readonly id: string;
  readonly description: string;
  /** Defaults of the model config, each with its reason beside it in the spec's file. */
  readonly defaults: Config;
  /** Validates a partial config (unknown keys are errors) and fills in defaults. */
  parseConfig(raw: unknown, field?: string): Config;
  /** Which network a canonical tensor name belongs to (each network has its own optimizer). */
  networkOf(tensorName: string): string;
  /** The networks and the default optimizer of each. */
  readonly networks: Record<string, OptimizerConfig>;
  /**
   * Image shape [height, width, channels] the family is built for when no
   * dataset says otherwise (MNIST's 28x28x1 for the built-in ones): what its
   * tests and benchmarks use.
   */
  readonly imageShape: [number, number, number];
  /** Classes a conditional family is conditioned on by default; 0 marks an unconditional family. */
  readonly classes: number;
  /**
   * Decay of the exponential moving average of the weights the coordinator
   * keeps for sampling and export; 0 keeps none (samples come from the
   * trained weights themselves). Diffusion models sample far better from EMA weights.
   */
  readonly emaDecay: number;
  /**
   * Every loss name the trainer reports. The coordinator refuses an update
   * naming any other, since loss names become metric labels and round-log keys.
   */
  readonly lossNames: readonly string[];
  /**
   * A trainer built for `data` (default: imageShape and classes). Callers check
   * the data first with checkDataShape (shared/models/data-shape.ts).
   */
  createTrainer(config: Config, data?: DataShape): Trainer;
  /**
   * Why the family cannot be built for data of this shape, or undefined when
   * it can. Absent: the family is built for its own imageShape and classes only.
   */
  dataShapeError?(data: DataShape): string | undefined;
}
