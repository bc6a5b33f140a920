import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/*
 * The wasm backend's convolutions run by oneDNN, through the optional addon
 * native/dnnl/tessera_dnnl.cc (built by native/build.sh where Debian's
 * libdnnl-dev is installed; PyTorch's CPU convolutions run on oneDNN). The
 * kernels read their inputs from the wasm heap and write their output into
 * it, so nothing is copied: Conv2D, FusedConv2D (bias, and relu or leaky
 * relu), Conv2DBackpropInput (also every transposed convolution's forward
 * pass) and Conv2DBackpropFilter. Anything else they are asked (NCHW, other
 * activations, a broadcast bias) goes to the kernel registered before them,
 * the project's or wasm's own. Not present or TESSERA_NATIVE_KERNELS=0:
 * nothing changes.
 */

type TensorInfo = tf.TensorInfo;

interface Addon {
  conv(kind: number, a: Float32Array, b: Float32Array, out: Float32Array, params: Int32Array, bias?: Float32Array): void;
  setThreads(threads: number): void;
}

/** The slice of the wasm backend the kernels use: where each tensor lives in its heap, and output allocation. */
interface WasmBackend extends tf.KernelBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
}

const ADDON_PATH = fileURLToPath(new URL('../../native/build/tessera_dnnl.node', import.meta.url));
const FORWARD = 0;
const INPUT_GRADIENT = 1;
const FILTER_GRADIENT = 2;
const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, leakyrelu: 2 };

let addon: Addon | undefined;
/** Convolutions the addon ran, and calls passed to the kernels it stands in for. */
export const dnnlCalls = { native: 0, passedOn: 0 };
/** The kernels these replace, for what they do not take. */
const previous = new Map<string, tf.KernelConfig>();

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

/** A Float32Array over a tensor's data in the wasm heap (valid until the heap grows: take it after every allocation). */
function heapView(backend: WasmBackend, info: TensorInfo): Float32Array {
  const size = info.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(backend.wasm.HEAPU8.buffer, backend.dataIdMap.get(info.dataId).memoryOffset, size);
}

/** The addon's params for a convolution tfjs described, or undefined when it is not one the addon takes. */
function paramsOf(info: tf.backend_util.Conv2DInfo, activation = 0, alpha = 0): Int32Array | undefined {
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

/** Runs the addon into a new output of `shape`. */
function run(backend: WasmBackend, kind: number, a: TensorInfo, b: TensorInfo, shape: number[], params: Int32Array, bias?: TensorInfo): TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  try {
    const views = [a, b, out].map((info) => heapView(backend, info));
    addon!.conv(kind, views[0], views[1], views[2], params, bias ? heapView(backend, bias) : undefined);
    dnnlCalls.native += 1;
  } catch (error) {
    backend.disposeData(out.dataId, true);
    throw error;
  }
  return out;
}

// The inputs each kernel reads are there: the op that called it put them there.
type Args = { inputs: Record<string, TensorInfo>; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };

/** The kernel replaced, for a call these do not take. */
function fallback(name: string, args: Args): TensorInfo | TensorInfo[] {
  dnnlCalls.passedOn += 1;
  return previous.get(name)!.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as TensorInfo | TensorInfo[];
}

function conv2dInfo(xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap, dilations: unknown = attrs.dilations ?? 1) {
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

const float32 = (...infos: (TensorInfo | undefined)[]) => infos.every((info) => !info || info.dtype === 'float32');

function conv2d(args: Args): TensorInfo | TensorInfo[] {
  const { x, filter } = args.inputs;
  const info = conv2dInfo(x.shape, filter.shape, args.attrs ?? {});
  const params = float32(x, filter) ? paramsOf(info) : undefined;
  return params ? run(args.backend as WasmBackend, FORWARD, x, filter, info.outShape, params) : fallback('Conv2D', args);
}

function fusedConv2d(args: Args): TensorInfo | TensorInfo[] {
  const { x, filter, bias, preluActivationWeights } = args.inputs;
  const attrs = args.attrs ?? {};
  const info = conv2dInfo(x.shape, filter.shape, attrs);
  const activation = ACTIVATIONS[String(attrs.activation ?? 'linear')];
  const usable =
    activation !== undefined && !preluActivationWeights && float32(x, filter, bias) && (!bias || bias.shape.reduce((a, b) => a * b, 1) === info.outChannels);
  const params = usable ? paramsOf(info, activation, Number(attrs.leakyreluAlpha ?? 0.2)) : undefined;
  return params ? run(args.backend as WasmBackend, FORWARD, x, filter, info.outShape, params, bias) : fallback('FusedConv2D', args);
}

function conv2dBackpropInput(args: Args): TensorInfo | TensorInfo[] {
  const { dy, filter } = args.inputs;
  const attrs = args.attrs ?? {};
  const inputShape = attrs.inputShape as number[];
  const info = conv2dInfo(inputShape, filter.shape, attrs, 1);
  const params = float32(dy, filter) ? paramsOf(info) : undefined;
  return params ? run(args.backend as WasmBackend, INPUT_GRADIENT, dy, filter, inputShape, params) : fallback('Conv2DBackpropInput', args);
}

function conv2dBackpropFilter(args: Args): TensorInfo | TensorInfo[] {
  const { x, dy } = args.inputs;
  const attrs = args.attrs ?? {};
  const filterShape = attrs.filterShape as number[];
  const info = conv2dInfo(x.shape, filterShape, attrs, 1);
  const params = float32(x, dy) ? paramsOf(info) : undefined;
  return params ? run(args.backend as WasmBackend, FILTER_GRADIENT, x, dy, filterShape, params) : fallback('Conv2DBackpropFilter', args);
}

const KERNELS: Record<string, (args: Args) => TensorInfo | TensorInfo[]> = {
  Conv2D: conv2d,
  FusedConv2D: fusedConv2d,
  Conv2DBackpropInput: conv2dBackpropInput,
  Conv2DBackpropFilter: conv2dBackpropFilter,
};

/**
 * Registers the oneDNN convolutions for the wasm backend over whatever is
 * registered now (call it after registerWasmConvKernels), with `threads`
 * OpenMP threads. Returns why not when the addon is not usable; nothing is
 * changed then.
 */
export function registerDnnlKernels(threads = 1): string | undefined {
  const why = dnnlUnavailable();
  if (why) return why;
  addon!.setThreads(threads);
  if (previous.size > 0) return undefined;
  for (const [name, kernelFunc] of Object.entries(KERNELS)) {
    const before = tf.getKernel(name, 'wasm');
    if (!before) throw new Error(`the wasm backend has no ${name} kernel to stand in for`);
    previous.set(name, before);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...before, kernelFunc: kernelFunc as tf.KernelFunc });
  }
  return undefined;
}

/** Puts back the kernels registerDnnlKernels replaced (for tests comparing the two). */
export function unregisterDnnlKernels(): void {
  for (const [name, before] of previous) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(before);
  }
  previous.clear();
}
