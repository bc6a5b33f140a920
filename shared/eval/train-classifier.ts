import * as tf from '@tensorflow/tfjs';
import { deriveSeed, shuffle } from '../training/random.ts';
import { buildClassifier, classify, type ClassifierConfig } from './classifier.ts';
import { outlierImages } from './outliers.ts';

/** Labelled images to train or test on: NHWC, pixels in [0, 1]. */
export interface LabelledImages {
  images: Float32Array;
  labels: Int32Array;
  count: number;
}

export interface TrainOptions {
  /** Overrides config.epochs (CAS trains on generated digits with its own budget). */
  epochs?: number;
  /** Called after each epoch with its mean loss: progress for a command, nothing for a test. */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

/**
 * Trains a fresh classifier of `config`'s architecture on `data`: Adam,
 * cross-entropy, an order reshuffled every epoch from the config's seed.
 * Deterministic on a given backend. The model is the caller's to dispose.
 */
export async function trainClassifier(config: ClassifierConfig, data: LabelledImages, options: TrainOptions = {}): Promise<tf.LayersModel> {
  const model = buildClassifier(config);
  const optimizer = tf.train.adam(config.learningRate);
  const imageSize = config.imageShape[0] * config.imageShape[1] * config.imageShape[2];
  const epochs = options.epochs ?? config.epochs;
  const batchImages = new Float32Array(config.batchSize * imageSize);
  const batchLabels = new Int32Array(config.batchSize);
  const outlierCount = Math.round(config.batchSize * config.outlierShare);
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = shuffle(
        Uint32Array.from({ length: data.count }, (_, i) => i),
        deriveSeed(config.seed, 0xc1a5, epoch),
      );
      let lossSum = 0;
      let batches = 0;
      for (let start = 0, batch = 0; start < data.count; start += config.batchSize, batch++) {
        const size = Math.min(config.batchSize, data.count - start);
        for (let i = 0; i < size; i++) {
          const index = order[start + i];
          batchImages.set(data.images.subarray(index * imageSize, (index + 1) * imageSize), i * imageSize);
          batchLabels[i] = data.labels[index];
        }
        const outliers = outlierCount > 0 ? outlierImages(outlierCount, data, config.imageShape, deriveSeed(config.seed, 0x0071, epoch, batch)) : undefined;
        const loss = tf.tidy(() => {
          let images = tf.tensor4d(batchImages.subarray(0, size * imageSize), [size, ...config.imageShape]);
          let targets = tf.oneHot(tf.tensor1d(batchLabels.subarray(0, size), 'int32'), config.classes).toFloat();
          if (outliers) {
            // Non-digits aim at the uniform distribution: no class at all, said with as little confidence as there is.
            images = tf.concat([images, tf.tensor4d(outliers, [outlierCount, ...config.imageShape])]);
            targets = tf.concat([targets, tf.fill([outlierCount, config.classes], 1 / config.classes)]);
          }
          return optimizer.minimize(() => {
            const [probabilities] = model.apply(images, { training: true }) as tf.Tensor[];
            return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.log(tf.clipByValue(probabilities, 1e-7, 1))), 1))) as tf.Scalar;
          }, true)!;
        });
        lossSum += (await loss.data())[0];
        loss.dispose();
        batches++;
      }
      options.onEpoch?.(epoch, lossSum / Math.max(1, batches));
    }
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    optimizer.dispose();
  }
}

/** Share of `data` the model classifies as labelled. */
export async function accuracy(model: tf.LayersModel, data: LabelledImages): Promise<number> {
  const { probabilities, classes } = await classify(model, data.images, data.count);
  let correct = 0;
  for (let n = 0; n < data.count; n++) if (argmax(probabilities, n * classes, classes) === data.labels[n]) correct++;
  return correct / Math.max(1, data.count);
}

/** Index of the largest of `length` values starting at `offset`. */
export function argmax(values: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (values[offset + i] > values[offset + best]) best = i;
  return best;
}
