import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import type { DataShape, ModelSpec } from './types.ts';

/** The data a family is built for when no dataset says otherwise: its own imageShape and classes. */
export function defaultDataShape(spec: Pick<ModelSpec<any>, 'imageShape' | 'classes'>): DataShape {
  return { imageShape: spec.imageShape, classes: spec.classes };
}

/**
 * Why `spec` cannot be built for `data`, or undefined. A conditional family
 * needs labelled data; the rest is the family's own answer (dataShapeError),
 * or, from a family that gives none, its one imageShape and class count.
 */
export function dataShapeError(spec: ModelSpec<any>, data: DataShape): string | undefined {
  const shape = data.imageShape.join('x');
  if (spec.classes > 0 && data.classes === 0) return `model ${spec.id} is conditioned on classes; the dataset has none (no class subfolders)`;
  if (spec.dataShapeError) {
    const reason = spec.dataShapeError(data);
    return reason === undefined ? undefined : `model ${spec.id} cannot make ${shape} images: ${reason}`;
  }
  if (shape !== spec.imageShape.join('x')) return `model ${spec.id} makes ${spec.imageShape.join('x')} images only; the dataset has ${shape}`;
  if (spec.classes > 0 && data.classes !== spec.classes) return `model ${spec.id} is conditioned on ${spec.classes} classes; the dataset has ${data.classes}`;
  return undefined;
}

/** dataShapeError as an InvalidConfig error naming the field. */
export function checkDataShape(spec: ModelSpec<any>, data: DataShape, field = 'dataset.id'): void {
  const reason = dataShapeError(spec, data);
  if (reason !== undefined) throw new TesseraError(ErrorCode.InvalidConfig, reason, { field });
}

/**
 * The built-in families' geometry: two stride-2 steps each way (28 -> 14 -> 7
 * for MNIST, 32 -> 16 -> 8 for 32x32 images), so height and width are
 * multiples of 4. Below 8 the smallest grid would be a single pixel.
 */
export function halvedTwiceError({ imageShape: [height, width] }: DataShape): string | undefined {
  if (height % 4 !== 0 || width % 4 !== 0 || height < 8 || width < 8) {
    return `it halves the image twice, so height and width must be multiples of 4 and at least 8; got ${height}x${width}`;
  }
  return undefined;
}

/** The grid two halvings leave: [height / 4, width / 4] (7x7 for 28x28). */
export function quarterGrid({ imageShape: [height, width] }: DataShape): [number, number] {
  return [height / 4, width / 4];
}

/** Values per image: height x width x channels. */
export function pixelsOf({ imageShape }: DataShape): number {
  return imageShape[0] * imageShape[1] * imageShape[2];
}
