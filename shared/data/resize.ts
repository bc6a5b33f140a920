/*
 * Pixels of decoded images brought to a dataset's shape: pure math over typed
 * arrays, so the coordinator, a worker and the tests resample alike.
 */

/** A decoded image: `width x height` pixels of 4 bytes, RGBA, row by row (what pngjs and jpeg-js give). */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** One output position's source taps along an axis: the first source index and a weight per source index from there. */
interface Taps {
  start: number;
  weights: Float64Array;
}

/**
 * Source taps of each of `outSize` outputs over the source span
 * [offset, offset + span). Shrinking averages each output's footprint, every
 * source pixel weighted by how much of it the footprint covers (area
 * resampling: no aliasing, and a 2:1 shrink is the mean of 2x2 blocks);
 * growing interpolates linearly between the two nearest source centres.
 */
export function axisTaps(inSize: number, outSize: number, offset = 0, span = inSize): Taps[] {
  const scale = span / outSize;
  const taps: Taps[] = [];
  for (let out = 0; out < outSize; out++) {
    if (scale >= 1) {
      const from = offset + out * scale;
      const to = from + scale;
      const start = Math.floor(from);
      const end = Math.min(inSize, Math.ceil(to));
      const weights = new Float64Array(end - start);
      for (let source = start; source < end; source++) weights[source - start] = (Math.min(to, source + 1) - Math.max(from, source)) / scale;
      taps.push({ start, weights });
    } else {
      // The output's centre in source coordinates, between the centres of two source pixels (clamped at the edges).
      const centre = Math.min(inSize - 1, Math.max(0, offset + (out + 0.5) * scale - 0.5));
      const start = Math.min(Math.floor(centre), inSize - 2 < 0 ? 0 : inSize - 2);
      const fraction = centre - start;
      taps.push({ start, weights: inSize === 1 ? Float64Array.of(1) : Float64Array.of(1 - fraction, fraction) });
    }
  }
  return taps;
}

/**
 * The largest window of the source with the target's aspect ratio, centred:
 * cropped, not stretched, so a wide photo keeps its proportions.
 */
export function centreCrop(width: number, height: number, targetWidth: number, targetHeight: number): { x: number; y: number; width: number; height: number } {
  const targetAspect = targetWidth / targetHeight;
  if (width / height > targetAspect) {
    const cropped = height * targetAspect;
    return { x: (width - cropped) / 2, y: 0, width: cropped, height };
  }
  const cropped = width / targetAspect;
  return { x: 0, y: (height - cropped) / 2, width, height: cropped };
}

/**
 * An RGBA image as `channels` (1: grey, by Rec. 601 luma; 3: RGB) float
 * values in [0, 1], composited over black by its alpha, centre-cropped to the
 * target's aspect ratio and resampled to `height x width` (separably: rows,
 * then columns). NHWC order, `height * width * channels` values.
 */
export function resizeImage(image: RgbaImage, [height, width, channels]: readonly [number, number, number]): Float32Array {
  if (channels !== 1 && channels !== 3) throw new RangeError(`resizeImage: 1 or 3 channels, got ${channels}`);
  if (image.width < 1 || image.height < 1 || image.data.length !== image.width * image.height * 4) {
    throw new RangeError(`resizeImage: ${image.data.length} bytes for a ${image.width}x${image.height} RGBA image`);
  }
  const source = toChannels(image, channels);
  const crop = centreCrop(image.width, image.height, width, height);
  const columnTaps = axisTaps(image.width, width, crop.x, crop.width);
  const rowTaps = axisTaps(image.height, height, crop.y, crop.height);
  // Rows first: every source row resampled to the output width.
  const narrowed = new Float64Array(image.height * width * channels);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < width; x++) {
      const { start, weights } = columnTaps[x];
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let k = 0; k < weights.length; k++) sum += weights[k] * source[(y * image.width + start + k) * channels + c];
        narrowed[(y * width + x) * channels + c] = sum;
      }
    }
  }
  const result = new Float32Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    const { start, weights } = rowTaps[y];
    for (let i = 0; i < width * channels; i++) {
      let sum = 0;
      for (let k = 0; k < weights.length; k++) sum += weights[k] * narrowed[(start + k) * width * channels + i];
      result[y * width * channels + i] = Math.min(1, Math.max(0, sum));
    }
  }
  return result;
}

/** RGBA bytes as grey or RGB values in [0, 1], premultiplied by alpha (transparent pixels turn black). */
function toChannels(image: RgbaImage, channels: 1 | 3): Float64Array {
  const pixels = image.width * image.height;
  const values = new Float64Array(pixels * channels);
  for (let p = 0; p < pixels; p++) {
    const scale = image.data[p * 4 + 3] / 255 / 255;
    const r = image.data[p * 4] * scale;
    const g = image.data[p * 4 + 1] * scale;
    const b = image.data[p * 4 + 2] * scale;
    if (channels === 1) {
      values[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    } else {
      values[p * 3] = r;
      values[p * 3 + 1] = g;
      values[p * 3 + 2] = b;
    }
  }
  return values;
}

/** Values in [0, 1] as bytes (what the dataset cache stores); bytes / 255 gives every process the same float32 pixels back. */
export function toBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) bytes[i] = Math.round(Math.min(1, Math.max(0, values[i])) * 255);
  return bytes;
}

/** Bytes as values in [0, 1], the inverse of toBytes. */
export function fromBytes(bytes: Uint8Array): Float32Array {
  const values = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) values[i] = bytes[i] / 255;
  return values;
}
