import * as tf from '@tensorflow/tfjs';

/** Examples in one probe step: enough to fill a wasm SIMD loop, few enough to take milliseconds there. */
export const PROBE_BATCH = 4;

/** One timed unit of work on the current tfjs backend; `samples` says how many examples a step stands for. */
export interface Probe {
  samples: number;
  step(): Promise<void>;
  dispose(): void;
}

/**
 * The kernels our models spend their time in, at MNIST size: two strided 5×5
 * convolutions with leaky ReLUs (a narrow DCGAN discriminator's first layers), forward
 * and backward, the loss and gradients read back with `await` as a real step
 * reads them. Seeded, so every backend gets the same numbers.
 */
export function createConvProbe(batch = PROBE_BATCH): Probe {
  const images = tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  // tidy: the initial values are copied into the variables and freed.
  const first = tf.tidy(() => tf.variable(tf.randomNormal([5, 5, 1, 8], 0, 0.05, 'float32', 2))) as tf.Variable<tf.Rank.R4>;
  const second = tf.tidy(() => tf.variable(tf.randomNormal([5, 5, 8, 16], 0, 0.05, 'float32', 3))) as tf.Variable<tf.Rank.R4>;
  const loss = () =>
    tf.tidy(() => {
      const hidden = tf.leakyRelu(tf.conv2d(images, first, 2, 'same'), 0.2);
      return tf
        .leakyRelu(tf.conv2d(hidden, second, 2, 'same'), 0.2)
        .square()
        .mean() as tf.Scalar;
    });
  return {
    samples: batch,
    async step() {
      const { value, grads } = tf.variableGrads(loss, [first, second]);
      const tensors = [value, ...Object.values(grads)];
      try {
        await Promise.all(tensors.map((tensor) => tensor.data()));
      } finally {
        tf.dispose(tensors);
      }
    },
    dispose() {
      tf.dispose([images, first, second]);
    },
  };
}
