import * as tf from '@tensorflow/tfjs';

/** A tfjs weight initializer (the type tfjs does not export by name). */
type Initializer = ReturnType<typeof tf.initializers.randomNormal>;
import { ExampleNormalization, type ExampleNormMode } from '../layers/example-norm.ts';
import { FastLeakyReLU } from '../layers/leaky-relu.ts';
import { SpectralConv2D, SpectralDense } from '../layers/spectral-norm.ts';
import { quarterGrid } from '../data-shape.ts';
import type { DataShape } from '../types.ts';

/*
 * The layers DCGAN and the conditional DCGAN share: G's body from its input
 * vector to the image, D's body from the image to its features, and D's
 * dense heads. Both families differ only in how the label enters.
 */

/** The architecture knobs both GAN families share. */
export interface GanArchitecture {
  latentDim: number;
  /** Base channel count; G uses 2w then w, D uses w then 2w. */
  width: number;
  /** Slope of LeakyReLU in both networks. */
  leak: number;
  /** Per-example normalization of G's hidden layers, before each activation. */
  generatorNorm: 'none' | ExampleNormMode;
  /** D's kernels divided by their largest singular value at every call, or left as they are. */
  discriminatorNorm: 'none' | 'spectral';
  /** Power iterations per step of the spectral norm's fixed-start estimate. */
  powerIterations: number;
  /** D's convolutions: the two strided ones, then 3x3 stride-1 ones at the last grid; 2 when absent. */
  discriminatorDepth?: number;
  /** G's convolutions: the two transposed ones, with 3x3 stride-1 ones at the half grid between them; 2 when absent. */
  generatorDepth?: number;
  /** D's base channel count (w, then 2w); `width` when absent or 0. */
  discriminatorWidth?: number;
}

/** The shape both GANs are built for when no dataset says otherwise: MNIST's. */
export const IMAGE: [number, number, number] = [28, 28, 1];

/** DCGAN's initializer: N(0, 0.02), seeded per layer. */
export function initializer(seed: number): Initializer {
  return tf.initializers.randomNormal({ mean: 0, stddev: 0.02, seed });
}

const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor) => layer.apply(x) as tf.SymbolicTensor;

/** G's normalization (if any) then activation, after its hidden layer `index`. */
function normalizeAndActivate(x: tf.SymbolicTensor, config: GanArchitecture, index: number): tf.SymbolicTensor {
  if (config.generatorNorm !== 'none') {
    // Layer norm gets a gain and bias per channel, as batch norm had; pixel norm goes without, as in ProGAN.
    x = apply(new ExampleNormalization({ name: `g_norm${index}`, mode: config.generatorNorm, affine: config.generatorNorm === 'layer' }), x);
  }
  return apply(new FastLeakyReLU({ name: `g_act${index}`, alpha: config.leak }), x);
}

/**
 * G from its input vector (latents, with the label's embedding when
 * conditional) to an image of the data's shape in [-1, 1]: a dense layer to a
 * grid a quarter of the image's size (7x7 for 28x28, 8x8 for 32x32), then two
 * 2x transposed convolutions, the last one to the image's channels; with
 * `generatorDepth` past 2, 3x3 stride-1 convolutions at the half grid (14x14)
 * between them, each normalized and activated as the others.
 */
export function generatorBody(input: tf.SymbolicTensor, config: GanArchitecture, seed: number, data: DataShape): tf.SymbolicTensor {
  const w = config.width;
  const [rows, columns] = quarterGrid(data);
  let x = apply(tf.layers.dense({ name: 'g_dense', units: rows * columns * 2 * w, kernelInitializer: initializer(seed + 1) }), input);
  x = apply(tf.layers.reshape({ name: 'g_reshape', targetShape: [rows, columns, 2 * w] }), x);
  x = normalizeAndActivate(x, config, 0);
  x = apply(tf.layers.conv2dTranspose({ name: 'g_up1', filters: w, kernelSize: 4, strides: 2, padding: 'same', kernelInitializer: initializer(seed + 2) }), x);
  x = normalizeAndActivate(x, config, 1);
  for (let i = 3; i <= (config.generatorDepth ?? 2); i++) {
    x = apply(
      tf.layers.conv2d({ name: `g_conv${i}`, filters: w, kernelSize: 3, strides: 1, padding: 'same', kernelInitializer: initializer(seed + 30 + i) }),
      x,
    );
    x = normalizeAndActivate(x, config, i);
  }
  const up2 = tf.layers.conv2dTranspose({
    name: 'g_up2',
    filters: data.imageShape[2],
    kernelSize: 4,
    strides: 2,
    padding: 'same',
    kernelInitializer: initializer(seed + 3),
    activation: 'tanh',
  });
  return apply(up2, x);
}

/** A strided 4x4 convolution of D, spectrally normalized when the config asks. */
function discriminatorConv(
  name: string,
  filters: number,
  config: GanArchitecture,
  seed: number,
  shape: { kernelSize: number; strides: number } = { kernelSize: 4, strides: 2 },
): tf.layers.Layer {
  const common = { name, ...shape, padding: 'same' as const, kernelInitializer: initializer(seed) };
  return config.discriminatorNorm === 'spectral'
    ? new SpectralConv2D({ ...common, units: filters, iterations: config.powerIterations })
    : tf.layers.conv2d({ ...common, filters });
}

/** A dense layer of D, spectrally normalized when the config asks. */
export function discriminatorDense(name: string, units: number, config: GanArchitecture, seed: number, useBias = true): tf.layers.Layer {
  const kernelInitializer = initializer(seed);
  if (config.discriminatorNorm === 'spectral') return new SpectralDense({ name, units, iterations: config.powerIterations, kernelInitializer, useBias });
  return tf.layers.dense({ name, units, kernelInitializer, useBias });
}

/** D from an image to its flattened features: two stride-2 convolutions, 7x7x2w of them for 28x28, 8x8x2w for 32x32. */
export function discriminatorFeatures(images: tf.SymbolicTensor, config: GanArchitecture, seed: number): tf.SymbolicTensor {
  const w = config.discriminatorWidth || config.width;
  let x = apply(discriminatorConv('d_conv1', w, config, seed + 11), images);
  x = apply(new FastLeakyReLU({ name: 'd_act1', alpha: config.leak }), x);
  x = apply(discriminatorConv('d_conv2', 2 * w, config, seed + 12), x);
  x = apply(new FastLeakyReLU({ name: 'd_act2', alpha: config.leak }), x);
  for (let i = 3; i <= (config.discriminatorDepth ?? 2); i++) {
    x = apply(discriminatorConv(`d_conv${i}`, 2 * w, config, seed + 20 + i, { kernelSize: 3, strides: 1 }), x);
    x = apply(new FastLeakyReLU({ name: `d_act${i}`, alpha: config.leak }), x);
  }
  return apply(tf.layers.flatten({ name: 'd_flatten' }), x);
}
