import * as tf from '@tensorflow/tfjs';

/** The shape of the U-Net's architecture; the diffusion config carries these. */
export interface UnetConfig {
  /** Channels at full resolution. */
  baseChannels: number;
  /** Channel multiplier at full, half and quarter resolution (28x28, 14x14 and 7x7 for MNIST). */
  channelMultipliers: [number, number, number];
  /** Size of the sinusoidal timestep embedding fed in (even). */
  timeEmbeddingDim: number;
  /** Classes for conditioning (a one-hot of classes + 1 goes in); 0 for an unconditional net. */
  classes: number;
  /** [height, width, channels] of the images, height and width multiples of 4. */
  imageShape: [number, number, number];
}

/** Names of the model's inputs, in the order `apply` takes them. */
export const UNET_INPUTS = { image: 'noised_image', time: 'time_embedding', label: 'label_one_hot' } as const;

type Symbolic = tf.SymbolicTensor;

/**
 * Builds the layers with seeded initializers, one seed offset per layer, so
 * the same seed gives the same weights in every process.
 */
class Builder {
  private offset = 0;
  constructor(private readonly seed: number) {}

  private kernel(): ReturnType<typeof tf.initializers.glorotUniform> {
    return tf.initializers.glorotUniform({ seed: this.seed + ++this.offset });
  }

  conv(name: string, x: Symbolic, filters: number, options: { kernelSize?: number; strides?: number } = {}): Symbolic {
    const { kernelSize = 3, strides = 1 } = options;
    return tf.layers.conv2d({ name, filters, kernelSize, strides, padding: 'same', kernelInitializer: this.kernel() }).apply(x) as Symbolic;
  }

  dense(name: string, x: Symbolic, units: number, useBias = true): Symbolic {
    return tf.layers.dense({ name, units, useBias, kernelInitializer: this.kernel() }).apply(x) as Symbolic;
  }

  swish(name: string, x: Symbolic): Symbolic {
    return tf.layers.activation({ name, activation: 'swish' }).apply(x) as Symbolic;
  }

  add(name: string, ...xs: Symbolic[]): Symbolic {
    return tf.layers.add({ name }).apply(xs) as Symbolic;
  }

  /**
   * Pre-activation residual block: swish, conv; plus the block's projection of
   * the conditioning embedding (broadcast over pixels); swish, conv; plus the
   * input (through a 1x1 conv when channels change).
   */
  residual(name: string, x: Symbolic, embedding: Symbolic, channels: number): Symbolic {
    let h = this.conv(`${name}_conv1`, this.swish(`${name}_act1`, x), channels);
    const projected = this.dense(`${name}_emb`, embedding, channels);
    const perPixel = tf.layers.reshape({ name: `${name}_emb_reshape`, targetShape: [1, 1, channels] }).apply(projected) as Symbolic;
    h = this.add(`${name}_emb_add`, h, perPixel);
    h = this.conv(`${name}_conv2`, this.swish(`${name}_act2`, h), channels);
    const inChannels = x.shape[x.shape.length - 1];
    const skip = inChannels === channels ? x : this.conv(`${name}_skip`, x, channels, { kernelSize: 1 });
    return this.add(`${name}_out`, skip, h);
  }
}

/**
 * A small U-Net predicting the noise ε of an image: one residual block per
 * level on the way down (28 → 14 → 7 for MNIST, 32 → 16 → 8 for 32x32
 * images, stride-2 convs) and up (nearest
 * upsampling then a conv), skip connections concatenated, a residual block in
 * the middle. The timestep comes in as its sinusoidal embedding, through an
 * MLP; a class label, when conditional, as a one-hot through a dense layer
 * added to that embedding. Layer names are the canonical tensor names.
 *
 * No normalization layers. Batch norm couples the examples of a batch, so the
 * mean gradient of a union batch would no longer be the weighted mean of the
 * workers' gradients; GroupNorm is not a tfjs layer; and tfjs's
 * layerNormalization tiles gamma and beta to the input's shape, whose Tile
 * gradient is one slice per tile: one layer took 54 s per step at batch 32 on
 * wasm. Pre-activation residual blocks train stably without them at this depth.
 */
export function buildUnet(config: UnetConfig, seed: number): tf.LayersModel {
  const b = new Builder(seed);
  const [c0, c1, c2] = config.channelMultipliers.map((multiplier) => multiplier * config.baseChannels);
  // 4x the base width, as in the DDPM paper's time MLP.
  const embeddingWidth = 4 * config.baseChannels;

  const image = tf.input({ name: UNET_INPUTS.image, shape: config.imageShape });
  const time = tf.input({ name: UNET_INPUTS.time, shape: [config.timeEmbeddingDim] });
  const inputs = [image, time];
  let embedding = b.dense('time_dense2', b.swish('time_act1', b.dense('time_dense1', time, embeddingWidth)), embeddingWidth);
  if (config.classes > 0) {
    const label = tf.input({ name: UNET_INPUTS.label, shape: [config.classes + 1] });
    inputs.push(label);
    // No bias: time_dense2's bias already shifts the sum.
    embedding = b.add('label_add', embedding, b.dense('label_dense', label, embeddingWidth, false));
  }
  // Each block projects the activated embedding: its own dense is then a plain linear map.
  const conditioning = b.swish('embedding_act', embedding);

  // Levels are named by their height (down28, down14, down7 for MNIST): the names are the canonical tensor names.
  const [full, half, quarter] = [1, 2, 4].map((divisor) => config.imageShape[0] / divisor);
  let h = b.conv('conv_in', image, c0);
  const skipFull = b.residual(`down${full}`, h, conditioning, c0);
  const skipHalf = b.residual(`down${half}`, b.conv(`down${full}_stride`, skipFull, c0, { strides: 2 }), conditioning, c1);
  const skipQuarter = b.residual(`down${quarter}`, b.conv(`down${half}_stride`, skipHalf, c1, { strides: 2 }), conditioning, c2);
  h = b.residual('middle', skipQuarter, conditioning, c2);

  const concat = (name: string, x: Symbolic, skip: Symbolic) => tf.layers.concatenate({ name, axis: -1 }).apply([x, skip]) as Symbolic;
  // The conv after upsampling already narrows to the finer level's width: half the multiplies at full resolution.
  const upsample = (name: string, x: Symbolic, channels: number) =>
    b.conv(`${name}_conv`, tf.layers.upSampling2d({ name, size: [2, 2], interpolation: 'nearest' }).apply(x) as Symbolic, channels);
  h = b.residual(`up${quarter}`, concat(`up${quarter}_concat`, h, skipQuarter), conditioning, c2);
  h = b.residual(`up${half}`, concat(`up${half}_concat`, upsample(`up${quarter}_upsample`, h, c1), skipHalf), conditioning, c1);
  h = b.residual(`up${full}`, concat(`up${full}_concat`, upsample(`up${half}_upsample`, h, c0), skipFull), conditioning, c0);
  const output = b.conv('conv_out', b.swish('out_act', h), config.imageShape[2]);
  return tf.model({ name: 'unet', inputs, outputs: output });
}
