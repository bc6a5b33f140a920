import * as tf from '@tensorflow/tfjs';

/*
 * Normalization of each example by its own statistics, never the batch's:
 * every example's output depends on its own input only, so data-parallel
 * gradients stay exact (batch norm would make them depend on how the batch
 * is split). The gradients are written by hand with tf.customGrad: tfjs's
 * own layerNormalization goes through batchNorm, whose gradient tiles the
 * statistics to the input's shape, and took 54 s per DCGAN step on wasm.
 */

/** What an example is normalized over: each pixel's channels (ProGAN's pixel norm) or all its values (layer norm). */
export type ExampleNormMode = 'pixel' | 'layer';

/** The axes a mode's statistics are taken over, for a rank-`rank` NHWC (or [batch, features]) tensor. */
function axesOf(mode: ExampleNormMode, rank: number): number[] {
  return mode === 'pixel' ? [rank - 1] : Array.from({ length: rank - 1 }, (_, i) => i + 1);
}

/**
 * x normalized per example: pixel mode divides each pixel's channel vector by
 * its root mean square; layer mode subtracts the example's mean and divides by
 * its standard deviation. With y the output, r the reciprocal scale and means
 * over the same axes, the gradient is r * (dy - mean(dy) - y * mean(dy * y))
 * (pixel mode has no mean(dy) term, since it does not center).
 */
export function exampleNorm(x: tf.Tensor, mode: ExampleNormMode, epsilon: number): tf.Tensor {
  const axes = axesOf(mode, x.rank);
  const center = mode === 'layer';
  const normalize = tf.customGrad((input: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const xIn = input as tf.Tensor;
    const centered = center ? tf.sub(xIn, tf.mean(xIn, axes, true)) : xIn;
    const reciprocal = tf.rsqrt(tf.add(tf.mean(tf.square(centered), axes, true), epsilon));
    const y = tf.mul(centered, reciprocal);
    (save as tf.GradSaveFunc)([y, reciprocal]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [yOut, r] = saved;
      let inner = tf.sub(dy, tf.mul(yOut, tf.mean(tf.mul(dy, yOut), axes, true)));
      if (center) inner = tf.sub(inner, tf.mean(dy, axes, true));
      return tf.mul(inner, r);
    };
    return { value: y, gradFunc };
  });
  return normalize(x);
}

export interface ExampleNormalizationArgs {
  name: string;
  mode: ExampleNormMode;
  /** A learned gain and bias per channel after normalizing (group norm's affine part); pixel norm goes without. */
  affine?: boolean;
  epsilon?: number;
}

/**
 * exampleNorm as a layer, registered for serialization so an exported
 * generator that uses it loads again wherever this module is imported.
 */
export class ExampleNormalization extends tf.layers.Layer {
  static className = 'ExampleNormalization';
  private readonly mode: ExampleNormMode;
  private readonly affine: boolean;
  private readonly epsilon: number;
  private gain?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(args: ExampleNormalizationArgs) {
    super({ name: args.name });
    if (args.mode !== 'pixel' && args.mode !== 'layer') throw new RangeError(`ExampleNormalization: mode must be 'pixel' or 'layer', got ${String(args.mode)}`);
    this.mode = args.mode;
    this.affine = args.affine ?? false;
    // 1e-8 as in ProGAN's pixel norm; layer norm's variance is never that small on live activations, so the same value serves.
    this.epsilon = args.epsilon ?? 1e-8;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1];
    if (this.affine && channels) {
      this.gain = this.addWeight('gain', [channels], 'float32', tf.initializers.ones());
      this.bias = this.addWeight('bias', [channels], 'float32', tf.initializers.zeros());
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const y = exampleNorm(x, this.mode, this.epsilon);
      return this.gain && this.bias ? tf.add(tf.mul(y, this.gain.read()), this.bias.read()) : y;
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), mode: this.mode, affine: this.affine, epsilon: this.epsilon };
  }
}
tf.serialization.registerClass(ExampleNormalization);
