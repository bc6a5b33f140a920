import * as tf from '@tensorflow/tfjs';

/** A tfjs weight initializer (the type tfjs does not export by name). */
type Initializer = ReturnType<typeof tf.initializers.randomNormal>;
import { gaussian } from '../../training/random.ts';

/*
 * Spectral normalization (Miyato et al. 2018): a layer's kernel divided by an
 * estimate of its largest singular value, which bounds the discriminator's
 * Lipschitz constant. The paper keeps the power iteration's vector between
 * steps; that vector would be state outside the weights, which workers do not
 * share. Here it is stateless: every step starts from the same fixed vector
 * and runs a fixed number of iterations, so every worker and the coordinator's
 * replay compute the same thing from the weights alone.
 */

/** Seed of the fixed start vector: any constant serves, as long as every runtime uses the same. */
const START_SEED = 0x5eed;

/**
 * kernel / sigma, with sigma = u' M v after `iterations` power iterations on
 * M = the kernel as a [fan-in, units] matrix, from a fixed start. u and v are
 * held constant in the gradient, as in the paper:
 * dL/dW = (G - <G, W> / sigma * u v') / sigma, with G = dL/d(W / sigma).
 */
export function spectralNormalize(kernel: tf.Tensor, iterations: number): tf.Tensor {
  const normalize = tf.customGrad((input: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const w = input as tf.Tensor;
    const { u, v, sigma } = powerIteration(w, iterations);
    (save as tf.GradSaveFunc)([w, u, v, sigma]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [weights, left, right, s] = saved;
      const projection = tf.div(tf.sum(tf.mul(dy, weights)), s);
      const outer = tf.reshape(tf.matMul(left, right, false, true), weights.shape);
      return tf.div(tf.sub(dy, tf.mul(projection, outer)), s);
    };
    return { value: tf.div(w, sigma), gradFunc };
  });
  return normalize(kernel);
}

/**
 * The fixed-start power iteration on the kernel as a [fan-in, units] matrix
 * M: the singular vectors' estimates u (fan-in) and v (units), as columns,
 * and sigma = u'Mv, which never exceeds the largest singular value.
 */
export function powerIteration(kernel: tf.Tensor, iterations: number): { u: tf.Tensor2D; v: tf.Tensor2D; sigma: tf.Scalar } {
  return tf.tidy(() => {
    const units = kernel.shape[kernel.rank - 1];
    const matrix = tf.reshape(kernel, [-1, units]) as tf.Tensor2D;
    let v = unit(tf.tensor2d(gaussian(units, START_SEED), [units, 1]));
    let u = unit(tf.matMul(matrix, v));
    for (let i = 0; i < iterations; i++) {
      v = unit(tf.matMul(matrix, u, true, false));
      u = unit(tf.matMul(matrix, v));
    }
    // The floor keeps an all-zero kernel at zero rather than 0 / 0.
    return { u, v, sigma: tf.maximum(tf.sum(tf.mul(u, tf.matMul(matrix, v))), 1e-12) as tf.Scalar };
  });
}

/** A column vector scaled to unit length (a tiny floor keeps an all-zero kernel finite); three kernels, where tf.norm takes five. */
function unit(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x)), 1e-24))) as tf.Tensor2D;
}

interface SpectralArgs {
  name: string;
  units: number;
  /** Power iterations after the first product, each step: more tighten the estimate of sigma from below. */
  iterations: number;
  /** Absent when deserialized: the loaded weights replace whatever it would draw. */
  kernelInitializer?: Initializer;
}

export interface SpectralDenseArgs extends SpectralArgs {
  useBias?: boolean;
}

/** The layers' kernel initializer: the one given, or Glorot's (tfjs's default) when deserialized without one. */
const initializerOf = (args: SpectralArgs) => args.kernelInitializer ?? tf.initializers.glorotUniform({});

export interface SpectralConv2DArgs extends SpectralArgs {
  kernelSize: number;
  strides: number;
  padding: 'same' | 'valid';
}

/** A 2-D convolution (NHWC, with bias) whose kernel is spectrally normalized at every call. */
export class SpectralConv2D extends tf.layers.Layer {
  static className = 'SpectralConv2D';
  private readonly args: SpectralConv2DArgs;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(args: SpectralConv2DArgs) {
    super({ name: args.name });
    this.args = args;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = inputShape as tf.Shape;
    const { kernelSize, units } = this.args;
    this.kernel = this.addWeight('kernel', [kernelSize, kernelSize, shape[shape.length - 1]!, units], 'float32', initializerOf(this.args));
    this.bias = this.addWeight('bias', [units], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const kernel = spectralNormalize(this.kernel!.read(), this.args.iterations) as tf.Tensor4D;
      return tf.add(tf.conv2d(x, kernel, this.args.strides, this.args.padding), this.bias!.read());
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [batch, height, width] = inputShape as tf.Shape;
    const { strides, kernelSize, padding, units } = this.args;
    const out = (size: number) => (padding === 'same' ? Math.ceil(size / strides) : Math.ceil((size - kernelSize + 1) / strides));
    return [batch, out(height!), out(width!), units];
  }

  override getConfig(): tf.serialization.ConfigDict {
    const { kernelInitializer: _, ...rest } = this.args;
    return { ...super.getConfig(), ...rest };
  }
}
tf.serialization.registerClass(SpectralConv2D);

/** A dense layer (with bias) whose kernel is spectrally normalized at every call. */
export class SpectralDense extends tf.layers.Layer {
  static className = 'SpectralDense';
  private readonly args: SpectralDenseArgs;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(args: SpectralDenseArgs) {
    super({ name: args.name });
    this.args = args;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = inputShape as tf.Shape;
    this.kernel = this.addWeight('kernel', [shape[shape.length - 1]!, this.args.units], 'float32', initializerOf(this.args));
    if (this.args.useBias ?? true) this.bias = this.addWeight('bias', [this.args.units], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor2D;
      const y = tf.matMul(x, spectralNormalize(this.kernel!.read(), this.args.iterations) as tf.Tensor2D);
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return [(inputShape as tf.Shape)[0], this.args.units];
  }

  override getConfig(): tf.serialization.ConfigDict {
    const { kernelInitializer: _, ...rest } = this.args;
    return { ...super.getConfig(), ...rest };
  }
}
tf.serialization.registerClass(SpectralDense);
