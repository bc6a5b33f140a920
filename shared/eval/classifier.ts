import * as tf from '@tensorflow/tfjs';

/** The evaluator's classifier: shape of its input, its widths and its training schedule. Hashed with the data, so any change retrains. */
export interface ClassifierConfig {
  imageShape: [number, number, number];
  classes: number;
  /** Filters of the two 3x3 conv layers (each followed by 2x2 max pooling). */
  filters: [number, number];
  /** Units of the penultimate dense layer, whose activations are the features. */
  features: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /**
   * Images that are not digits added to each batch, as a share of its real
   * ones, trained towards the uniform distribution (outlier exposure, see
   * outliers.ts). 0 trains on the data alone (as CAS does).
   */
  outlierShare: number;
  /** Seeds the initializers and the shuffles: the same config trains the same weights on the same backend. */
  seed: number;
}

/** Defaults for 28x28x1 digits: small enough to train in minutes on one wasm core, and above 98% on held-out MNIST. */
export const DEFAULT_CLASSIFIER_CONFIG: ClassifierConfig = {
  imageShape: [28, 28, 1],
  classes: 10,
  // 16 then 32 filters: the classic small MNIST CNN, halved; the features, not the conv stack, carry most weights.
  filters: [16, 32],
  // 128 features: rich enough for Fréchet distance and k-NN manifolds to see style, small enough for 128x128 covariances.
  features: 128,
  // 10 epochs over 9,000 digits: 97.9% held-out (2 epochs: 96.6%), about 100 s on one wasm core.
  epochs: 10,
  batchSize: 64,
  learningRate: 1e-3,
  // 16 non-digits per 64 digits: uniform noise then scores 0% recognisable instead of 99.8%; real digits keep 9x%.
  outlierShare: 0.25,
  seed: 1,
};

/** The name of the penultimate layer: its activations are the features every distance is measured on. */
export const FEATURES_LAYER = 'features';

/**
 * conv-pool-conv-pool-dense-softmax. No dropout or batch norm: both would
 * make the features depend on training mode or on the batch, and the
 * features must be a plain function of one image.
 */
export function buildClassifier(config: ClassifierConfig): tf.LayersModel {
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: config.seed * 101 + offset });
  const [filters1, filters2] = config.filters;
  const input = tf.input({ name: 'images', shape: config.imageShape });
  let x = tf.layers
    .conv2d({ name: 'conv1', filters: filters1, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({ name: 'conv2', filters: filters2, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2) })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  // The features are the dense layer's pre-activations: after the ReLU, every image the classifier rejects (noise,
  // trained towards no class) collapses onto the origin, which a faint real digit's k-NN ball covers, and uniform
  // noise scored a manifold precision of 1. Before it, rejected images keep their distance from the digits.
  const features = tf.layers.dense({ name: FEATURES_LAYER, units: config.features, kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  const activated = tf.layers.activation({ name: 'features_relu', activation: 'relu' }).apply(features) as tf.SymbolicTensor;
  const probabilities = tf.layers
    .dense({ name: 'classes', units: config.classes, activation: 'softmax', kernelInitializer: init(4) })
    .apply(activated) as tf.SymbolicTensor;
  return tf.model({ name: 'classifier', inputs: input, outputs: [probabilities, features] });
}

/** What the classifier makes of a set of images: features and class probabilities, row-major. */
export interface Classified {
  count: number;
  features: Float32Array;
  featureSize: number;
  probabilities: Float32Array;
  classes: number;
}

/** Runs the classifier over `count` images (NHWC, [0, 1]) in batches, reading results back without blocking. */
export async function classify(model: tf.LayersModel, images: Float32Array, count: number, batchSize = 250): Promise<Classified> {
  const [height, width, channels] = model.inputs[0].shape.slice(1) as number[];
  const imageSize = height * width * channels;
  if (images.length !== count * imageSize) throw new RangeError(`classify: ${images.length} pixels for ${count} images of ${height}x${width}x${channels}`);
  const featureSize = model.outputs[1].shape[1] as number;
  const classes = model.outputs[0].shape[1] as number;
  const features = new Float32Array(count * featureSize);
  const probabilities = new Float32Array(count * classes);
  for (let start = 0; start < count; start += batchSize) {
    const size = Math.min(batchSize, count - start);
    const [probs, feats] = tf.tidy(() => {
      const batch = tf.tensor4d(images.subarray(start * imageSize, (start + size) * imageSize), [size, height, width, channels]);
      return model.predict(batch) as tf.Tensor[];
    });
    try {
      probabilities.set((await probs.data()) as Float32Array, start * classes);
      features.set((await feats.data()) as Float32Array, start * featureSize);
    } finally {
      tf.dispose([probs, feats]);
    }
  }
  return { count, features, featureSize, probabilities, classes };
}
