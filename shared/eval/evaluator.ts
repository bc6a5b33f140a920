import type * as tf from '@tensorflow/tfjs';
import type { ModelSpec, Trainer } from '../models/types.ts';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { deriveSeed } from '../training/random.ts';
import { coverageEntropy, labelAgreement, recognisableShare } from './class-scores.ts';
import { classify, type Classified, type ClassifierConfig } from './classifier.ts';
import { frechetDistance } from './frechet.ts';
import { gaussianStats, type GaussianStats } from './gaussian-stats.ts';
import { manifoldPrecisionRecall } from './manifold.ts';
import { reconstructionScores } from './reconstruction.ts';
import { drawRows, pickRows } from './rows.ts';
import type { QualityReport } from './report.ts';
import { accuracy, trainClassifier, type LabelledImages } from './train-classifier.ts';

/** Generated images to score: NHWC, pixels in [0, 1]; labels are the classes asked for (conditional models only; -1 = none). */
export interface SampleSet {
  images: Float32Array;
  labels?: Int32Array;
  count: number;
}

/** What an evaluator is made of: a trained classifier and the dataset's two splits. */
export interface EvaluatorParts {
  dataset: string;
  /** The trained classifier (buildClassifier's outputs: probabilities, features). The evaluator owns it from here. */
  classifier: tf.LayersModel;
  /** Its config: CAS trains a fresh classifier of the same architecture. */
  config: ClassifierConfig;
  /** The held-out split every figure is measured against. */
  heldOut: LabelledImages;
  /** The training split: the floor's real digits are drawn from it. */
  train: LabelledImages;
}

export interface EvaluatorOptions {
  /** Seeded draws of real training digits the floor averages over (the distance varies draw to draw at small counts). */
  floorDraws?: number;
  now?: () => number;
}

export interface ScoreOptions {
  /** Also train a classifier on the labelled samples and report its held-out accuracy (seconds to minutes). */
  cas?: boolean;
  /** Epochs of the CAS classifier (default: the evaluator classifier's own, so real digits give its accuracy). */
  casEpochs?: number;
}

/** What the classifier makes of the real held-out digits themselves: the ceiling a model's figures are read against. */
export interface HeldOutReference {
  count: number;
  /** Share classified as labelled. */
  accuracy: number;
  /** Share with max probability above 0.9 (no generator should be expected to beat real digits). */
  recognisable: number;
  coverageEntropy: number;
}

/** Fewest samples a report is made from: the k = 3 manifolds need more than 3, a covariance at least 2. */
export const MIN_SAMPLES = 10;
/** Samples a trainer draws per call in scoreTrainer: bounds the memory of a sampler (a U-Net at batch 1000 is large). */
const SAMPLE_CHUNK = 250;
const DEFAULT_FLOOR_DRAWS = 3;
/** Seeds of the real subsets: fixed, so two reports at the same count compare against the same real digits. */
const FLOOR_SEED = 0xf1002;
const MANIFOLD_SEED = 0x3a41f;
const REAL_SEED = 0x4ea1;
const CAS_SEED = 0xca5;
const RECONSTRUCTION_SEED = 0x7ec0;

/**
 * Scores generated images against one dataset's held-out split, on the
 * features and predictions of a classifier trained on the training split.
 * Isomorphic: runs on whatever tfjs backend is set.
 */
export class Evaluator {
  readonly dataset: string;
  readonly config: ClassifierConfig;
  /** The classifier on the real held-out digits. */
  readonly heldOutReference: HeldOutReference;
  private readonly classifier: tf.LayersModel;
  private readonly heldOut: LabelledImages;
  private readonly train: LabelledImages;
  private readonly floors = new Map<number, Promise<number>>();
  private readonly now: () => number;
  private readonly floorDraws: number;

  private constructor(
    parts: EvaluatorParts,
    private readonly heldOutClassified: Classified,
    private readonly heldOutStats: GaussianStats,
    options: EvaluatorOptions,
  ) {
    this.dataset = parts.dataset;
    this.config = parts.config;
    this.classifier = parts.classifier;
    this.heldOut = parts.heldOut;
    this.train = parts.train;
    this.now = options.now ?? (() => performance.now());
    this.floorDraws = options.floorDraws ?? DEFAULT_FLOOR_DRAWS;
    const { probabilities, classes, count } = heldOutClassified;
    this.heldOutReference = {
      count,
      accuracy: labelAgreement(probabilities, parts.heldOut.labels, count, classes) ?? 0,
      recognisable: recognisableShare(probabilities, count, classes),
      coverageEntropy: coverageEntropy(probabilities, count, classes),
    };
  }

  /** Classifies the held-out split once; every report compares against it. */
  static async create(parts: EvaluatorParts, options: EvaluatorOptions = {}): Promise<Evaluator> {
    const classified = await classify(parts.classifier, parts.heldOut.images, parts.heldOut.count);
    return new Evaluator(parts, classified, gaussianStats(classified.features, classified.count, classified.featureSize), options);
  }

  /** Scores generated samples (labels: the classes asked for, conditional models only; -1 = none). */
  async score(samples: SampleSet, options: ScoreOptions = {}): Promise<QualityReport> {
    const started = this.now();
    this.checkSamples(samples);
    const { count } = samples;
    const classified = await classify(this.classifier, samples.images, count);
    const frechet = frechetDistance(gaussianStats(classified.features, count, classified.featureSize), this.heldOutStats);
    const frechetFloor = await this.frechetFloor(count);
    const { precision, recall } = this.precisionRecall(classified);
    const report: QualityReport = {
      dataset: this.dataset,
      count,
      frechet,
      frechetFloor,
      precision,
      recall,
      recognisable: recognisableShare(classified.probabilities, count, classified.classes),
      coverageEntropy: coverageEntropy(classified.probabilities, count, classified.classes),
      ms: 0,
    };
    const agreement = samples.labels ? labelAgreement(classified.probabilities, samples.labels, count, classified.classes) : undefined;
    if (agreement !== undefined) report.labelAgreement = agreement;
    if (options.cas) report.cas = await this.classificationAccuracyScore(samples, options.casEpochs);
    report.ms = this.now() - started;
    return report;
  }

  /** Convenience: samples `count` images from a trainer (and reconstructions if it has reconstruct()) and scores them. */
  async scoreTrainer(trainer: Trainer, spec: ModelSpec<any>, count: number, seed: number, options: ScoreOptions = {}): Promise<QualityReport> {
    const started = this.now();
    checkCount(count);
    const imageSize = this.imageSize;
    const images = new Float32Array(count * imageSize);
    const labels = new Int32Array(count).fill(-1);
    for (let start = 0, chunk = 0; start < count; start += SAMPLE_CHUNK, chunk++) {
      const size = Math.min(SAMPLE_CHUNK, count - start);
      // Conditional models are asked for every class in turn, so label agreement and CAS cover all classes.
      const asked = spec.classes > 0 ? Int32Array.from({ length: size }, (_, i) => (start + i) % spec.classes) : undefined;
      const sampled = await trainer.sample(size, deriveSeed(seed, chunk), asked);
      images.set(sampled.images, start * imageSize);
      labels.set(sampled.labels, start);
    }
    const report = await this.score({ images, labels, count }, options);
    if (trainer.reconstruct) Object.assign(report, await this.reconstructions(trainer, count));
    report.ms = this.now() - started;
    return report;
  }

  /**
   * The figures real data gets: `count` training-split digits (not the
   * held-out ones) scored as if generated, with their true labels. The
   * reference a reader compares a model's report with.
   */
  async scoreReal(count: number, options: ScoreOptions = {}): Promise<QualityReport> {
    const rows = drawRows(this.train.count, Math.min(count, this.train.count), REAL_SEED);
    return this.score(pickRows(this.train, rows, this.imageSize), options);
  }

  /** Fréchet distance of `count` real training digits to the held-out split, averaged over seeded draws; cached per count. */
  frechetFloor(count: number): Promise<number> {
    let floor = this.floors.get(count);
    if (!floor) {
      floor = this.measureFloor(count);
      this.floors.set(count, floor);
      floor.catch(() => this.floors.delete(count));
    }
    return floor;
  }

  dispose(): void {
    this.classifier.dispose();
  }

  private get imageSize(): number {
    const [height, width, channels] = this.config.imageShape;
    return height * width * channels;
  }

  private async measureFloor(count: number): Promise<number> {
    let sum = 0;
    for (let draw = 0; draw < this.floorDraws; draw++) {
      const real = pickRows(this.train, drawRows(this.train.count, count, deriveSeed(FLOOR_SEED, count, draw)), this.imageSize);
      const classified = await classify(this.classifier, real.images, real.count);
      sum += frechetDistance(gaussianStats(classified.features, classified.count, classified.featureSize), this.heldOutStats);
    }
    return sum / this.floorDraws;
  }

  /** Manifolds of equal size: the first m samples against m held-out digits drawn with a fixed seed. */
  private precisionRecall(classified: Classified): { precision: number; recall: number } {
    const size = classified.featureSize;
    const m = Math.min(classified.count, this.heldOut.count);
    const rows = drawRows(this.heldOut.count, m, deriveSeed(MANIFOLD_SEED, m));
    const real = new Float32Array(m * size);
    rows.forEach((row, i) => real.set(this.heldOutClassified.features.subarray(row * size, (row + 1) * size), i * size));
    return manifoldPrecisionRecall(real, m, classified.features.subarray(0, m * size), m, size);
  }

  private async classificationAccuracyScore(samples: SampleSet, epochs?: number): Promise<number> {
    const labels = samples.labels;
    if (!labels || labels.some((label) => label < 0 || label >= this.config.classes)) {
      throw new TesseraError(
        ErrorCode.InvalidConfig,
        `a classification accuracy score needs every sample labelled with a class in [0, ${this.config.classes})`,
        { field: 'labels' },
      );
    }
    // A plain classifier, without outlier exposure: CAS asks how well the samples teach the classes, nothing more.
    const model = await trainClassifier(
      { ...this.config, outlierShare: 0, seed: deriveSeed(this.config.seed, CAS_SEED) },
      { images: samples.images, labels, count: samples.count },
      { epochs },
    );
    try {
      return await accuracy(model, this.heldOut);
    } finally {
      model.dispose();
    }
  }

  private async reconstructions(trainer: Trainer, count: number): Promise<Pick<QualityReport, 'reconstructionRecognisable' | 'reconstructionAgreement'>> {
    // A seeded draw: the held-out split is stored class by class, so its first rows would all be zeros.
    const size = Math.min(count, this.heldOut.count);
    const originals = pickRows(this.heldOut, drawRows(this.heldOut.count, size, deriveSeed(RECONSTRUCTION_SEED, size)), this.imageSize);
    return reconstructionScores(this.classifier, trainer, originals);
  }

  private checkSamples(samples: SampleSet): void {
    const { count } = samples;
    checkCount(count);
    if (samples.images.length !== count * this.imageSize) {
      throw new TesseraError(ErrorCode.TensorMismatch, `${samples.images.length} pixels for ${count} images of ${this.config.imageShape.join('x')}`, {
        field: 'images',
      });
    }
    if (samples.labels && samples.labels.length !== count)
      throw new TesseraError(ErrorCode.TensorMismatch, `${samples.labels.length} labels for ${count} images`, { field: 'labels' });
  }
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < MIN_SAMPLES)
    throw new TesseraError(ErrorCode.InvalidConfig, `at least ${MIN_SAMPLES} samples are scored, got ${count}`, { field: 'count' });
}
