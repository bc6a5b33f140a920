import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/*
 * The optional addon native/dnnl/tessera_dnnl.cc (built by native/build.sh
 * where Debian's libdnnl-dev is installed; PyTorch's CPU convolutions run on
 * oneDNN) and what the kernels of the dnnl-*.ts files share: loading it, views
 * of tensors in the wasm heap (the addon reads its inputs and writes its
 * output there in place, nothing is copied), tfjs's convolution geometry in
 * the addon's terms, and handing what the addon does not take to the kernel
 * it replaced.
 */

export type TensorInfo = tf.TensorInfo;
/** What a kernel function is given. */
export type Args = { inputs: Record<string, TensorInfo>; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };
export type Kernel = (args: Args) => TensorInfo | TensorInfo[];

interface Addon {
  conv(kind: number, a: Float32Array, b: Float32Array, out: Float32Array, params: Int32Array, bias?: Float32Array): void;
  setThreads(threads: number): void;
  sum(x: Float32Array, out: Float32Array, dims: Int32Array): void;
}

/** The slice of the wasm backend the kernels use: where each tensor lives in its heap, and output allocation. */
interface WasmBackend extends tf.KernelBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
}

const ADDON_PATH = fileURLToPath(new URL('../../native/build/tessera_dnnl.node', import.meta.url));
/** The addon's kinds of convolution. */
export const FORWARD = 0;
export const INPUT_GRADIENT = 1;
export const FILTER_GRADIENT = 2;

let addon: Addon | undefined;
/** Kernel calls the addon ran, and calls passed to the kernels it stands in for. */
export const dnnlCalls = { native: 0, passedOn: 0 };
/** The kernels these replace, for what they do not take (filled by registerDnnlKernels). */
export const replaced = new Map<string, tf.KernelConfig>();

/** Why the addon is not used here, or undefined when it can be. */
export function dnnlUnavailable(): string | undefined {
  if (process.env.TESSERA_NATIVE_KERNELS === '0') return 'TESSERA_NATIVE_KERNELS=0';
  if (!existsSync(ADDON_PATH)) return 'not built (bash native/build.sh, with libdnnl-dev installed)';
  try {
    addon ??= createRequire(import.meta.url)(ADDON_PATH) as Addon;
    return undefined;
  } catch (error) {
    return `does not load: ${(error as Error).message}`;
  }
}

/** Sets the addon's OpenMP threads (call after dnnlUnavailable() said it is usable). */
export function setDnnlThreads(threads: number): void {
  addon!.setThreads(threads);
}

/** A Float32Array over a tensor's data in the wasm heap (valid until the heap grows: take it after every allocation). */
function heapView(backend: WasmBackend, info: TensorInfo): Float32Array {
  const size = info.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(backend.wasm.HEAPU8.buffer, backend.dataIdMap.get(info.dataId).memoryOffset, size);
}

/** The addon's params for a convolution tfjs described, or undefined when it is not one the addon takes. */
export function paramsOf(info: tf.backend_util.Conv2DInfo, activation = 0, alpha = 0): Int32Array | undefined {
  if (info.dataFormat !== 'channelsLast') return undefined;
  const { top, left, bottom, right } = info.padInfo;
  if ([top, left, bottom, right].some((pad) => pad < 0)) return undefined;
  return Int32Array.from([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outChannels,
    info.filterHeight,
    info.filterWidth,
    info.outHeight,
    info.outWidth,
    info.strideHeight,
    info.strideWidth,
    info.dilationHeight,
    info.dilationWidth,
    top,
    left,
    bottom,
    right,
    activation,
    Math.round(alpha * 1e6),
  ]);
}

/** A new float32 output of `shape` that `fill` writes in the addon; freed again if the addon throws. */
function intoNewOutput(args: Args, shape: number[], fill: (view: (info: TensorInfo) => Float32Array, out: TensorInfo) => void): TensorInfo {
  const backend = args.backend as WasmBackend;
  const out = backend.makeOutput(shape, 'float32');
  try {
    // Views only after the allocation: it may have grown the heap.
    fill((info) => heapView(backend, info), out);
    dnnlCalls.native += 1;
  } catch (error) {
    backend.disposeData(out.dataId, true);
    throw error;
  }
  return out;
}

/** Runs the addon's convolution of `kind` into a new output of `shape`. */
export function runConv(args: Args, kind: number, a: TensorInfo, b: TensorInfo, shape: number[], params: Int32Array, bias?: TensorInfo): TensorInfo {
  return intoNewOutput(args, shape, (view, out) => addon!.conv(kind, view(a), view(b), view(out), params, bias ? view(bias) : undefined));
}

/** Sums x into a new output of `outShape` over the axes where `reducedDims` (x's rank) is 1 and x's dim is not. */
export function runSum(args: Args, x: TensorInfo, reducedDims: number[], outShape: number[]): TensorInfo {
  return intoNewOutput(args, outShape, (view, out) => addon!.sum(view(x), view(out), Int32Array.from([...x.shape, ...reducedDims])));
}

/** The kernel replaced, for a call these do not take. */
export function passOn(name: string, args: Args): TensorInfo | TensorInfo[] {
  dnnlCalls.passedOn += 1;
  return replaced.get(name)!.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as TensorInfo | TensorInfo[];
}

/** tfjs's geometry of a convolution of x by filter under the op's attrs. */
export function conv2dInfo(xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap, dilations: unknown = attrs.dilations ?? 1) {
  const { strides, pad, dimRoundingMode, dataFormat } = attrs as Record<string, never>;
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations as number,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC'),
  );
}

/** Whether every given tensor is float32 (the addon's only type). */
export const float32 = (...infos: (TensorInfo | undefined)[]) => infos.every((info) => !info || info.dtype === 'float32');
