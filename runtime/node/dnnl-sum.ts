import * as tf from '@tensorflow/tfjs';
import { passOn, runSum, type Args } from './dnnl-addon.ts';

/** Sum in the addon (one pass, where wasm first transposes the reduced axes inward): float32, rank 1 to 6, any axes. */
export function sum(args: Args) {
  const { x } = args.inputs;
  const attrs = args.attrs ?? {};
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
  const size = x.shape.reduce((a, b) => a * b, 1);
  if (x.dtype !== 'float32' || x.shape.length < 1 || x.shape.length > 6 || axes.length === 0 || size === 0) return passOn('Sum', args);
  const reducedDims = x.shape.map((dim, axis) => (axes.includes(axis) ? 1 : dim));
  const outShape = attrs.keepDims ? reducedDims : x.shape.filter((_, axis) => !axes.includes(axis));
  return runSum(args, x, reducedDims, outShape);
}
