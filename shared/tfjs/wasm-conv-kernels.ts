import * as tf from '@tensorflow/tfjs';

/*
 * Conv2D gradients for the tfjs wasm backend, expressed as calls to wasm's own
 * compiled kernels (XNNPACK Conv2D, Transpose, PadV2, Slice, Concat, Reshape).
 *
 * - Conv2DBackpropInput: wasm's built-in kernel is a direct loop outside
 *   XNNPACK, up to 12x slower than the forward conv (DCGAN conv2, batch 64).
 *   A strided transposed conv equals one stride-1 conv that yields all sh*sw
 *   output phases as channels, then a pixel shuffle: within 1.5x of the
 *   forward conv. Zero-dilating dy instead wastes sh*sw times the multiplies
 *   (there: 292 ms against 45 ms).
 * - Conv2DBackpropFilter: wasm has none. dW is a conv of x (batch and channels
 *   swapped) with dy as a dilated filter; XNNPACK honours dilations.
 * - BatchMatMul with a transposed operand (every dense layer's gradient):
 *   wasm's runs 10-13x slower than the plain product (G's 64x64 by 64x3136
 *   dW: 12.3 ms, against 0.9 ms for an explicit Transpose then the plain
 *   product). Large enough products transpose first.
 *
 * The other kernels are looked up in the registry at call time and invoked
 * directly (as wasm's own composite kernels do), so no tensors pass through
 * the engine and intermediates are freed with backend.disposeData.
 */

type TensorInfo = tf.TensorInfo;
type Attrs = Record<string, unknown>;
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

interface KernelArgs<Inputs> {
  inputs: Inputs;
  backend: tf.KernelBackend;
  attrs: Attrs;
}

/** The slice of the wasm backend these kernels rely on. */
interface WasmBackend extends tf.KernelBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

const BACKEND = 'wasm';
const BACKPROP_INPUT = 'Conv2DBackpropInput';
const BACKPROP_FILTER = 'Conv2DBackpropFilter';
const MAT_MUL = 'BatchMatMul';

/** wasm's own Conv2DBackpropInput and BatchMatMul, kept so unregisterWasmConvKernels can put them back. */
let builtinBackpropInput: tf.KernelConfig | undefined;
let builtinMatMul: tf.KernelConfig | undefined;

/** Owns the intermediates of one kernel call: everything but the result is freed. */
class Scratch {
  private readonly made: TensorInfo[] = [];
  constructor(private readonly backend: WasmBackend) {}

  run(kernelName: string, inputs: Record<string, TensorInfo> | TensorInfo[], attrs: Attrs = {}): TensorInfo {
    const config = tf.getKernel(kernelName, BACKEND);
    if (!config) throw new Error(`wasm conv kernels need the wasm kernel '${kernelName}'`);
    const out = config.kernelFunc({ inputs: inputs as tf.NamedTensorInfoMap, backend: this.backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
    this.made.push(out);
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  conv(x: TensorInfo, filter: TensorInfo, pads: [number, number, number, number], dilations: [number, number] = [1, 1]): TensorInfo {
    const [top, bottom, left, right] = pads;
    return this.run(
      'Conv2D',
      { x, filter },
      {
        strides: [1, 1],
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations,
        dimRoundingMode: undefined,
      },
    );
  }

  /** Rows [top, top+h) and columns [left, left+w) of an NHWC tensor. */
  crop(x: TensorInfo, top: number, left: number, h: number, w: number): TensorInfo {
    const [b, height, width, c] = x.shape;
    if (top === 0 && left === 0 && h === height && w === width) return x;
    // Folding W and C together lets wasm's Slice copy whole row segments, not one pixel at a time.
    const rows = this.reshape(x, [b, height, width * c]);
    const cut = this.run('Slice', { x: rows }, { begin: [0, top, left * c], size: [b, h, w * c] });
    return this.reshape(cut, [b, h, w, c]);
  }

  /** Reverses the order of the n leading blocks; wasm's Reverse took 4-5 ms on a 4x4x64x128 filter, block copies take ~0.2 ms. */
  reverseBlocks(x: TensorInfo, n: number): TensorInfo {
    if (n === 1) return x;
    const shape = x.shape;
    const flat = this.reshape(x, [n, tf.util.sizeFromShape(shape) / n]);
    const blocks: TensorInfo[] = [];
    for (let i = n - 1; i >= 0; i--) blocks.push(this.run('Slice', { x: flat }, { begin: [i, 0], size: [1, flat.shape[1]] }));
    return this.reshape(this.run('Concat', blocks, { axis: 0 }), shape);
  }

  zeros(shape: number[]): TensorInfo {
    return this.run('Fill', {}, { shape, value: 0, dtype: 'float32' });
  }

  /** Frees every intermediate except `result` (which may share storage with one of them). */
  keep(result: TensorInfo): TensorInfo {
    for (const t of this.made) if (t !== result) this.backend.disposeData(t.dataId);
    this.made.length = 0;
    return result;
  }

  /** Frees every intermediate after a failure. */
  drop(): void {
    for (const t of this.made) this.backend.disposeData(t.dataId);
    this.made.length = 0;
  }
}

function convInfo(xShape: number[], filterShape: number[], attrs: Attrs): tf.backend_util.Conv2DInfo {
  const dataFormat = (attrs.dataFormat as string | undefined) ?? 'NHWC';
  if (dataFormat !== 'NHWC') throw new Error(`wasm conv gradients support NHWC only, got ${dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as Pad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
}

function withScratch(backend: tf.KernelBackend, body: (s: Scratch) => TensorInfo): TensorInfo {
  const scratch = new Scratch(backend as WasmBackend);
  try {
    return scratch.keep(body(scratch));
  } catch (error) {
    scratch.drop();
    throw error;
  }
}

/**
 * One spatial axis of the phase decomposition of a transposed conv:
 * dx[q*s + r - pad] = sum_j dy[q - j] * w[j*s + r], so output phase r is a
 * stride-1 correlation of dy with the taps w[r], w[s + r], ...
 */
function phaseAxis(inSize: number, outSize: number, kernel: number, stride: number, padBefore: number) {
  const taps = Math.ceil(kernel / stride);
  const qFirst = Math.floor(padBefore / stride);
  const qLast = Math.floor((inSize - 1 + padBefore) / stride);
  // dy rows outside [lo, hi] reach no dx row.
  const lo = Math.max(0, qFirst - taps + 1);
  const hi = Math.min(outSize - 1, qLast);
  return {
    taps,
    lo,
    count: hi - lo + 1,
    padBefore: lo - qFirst + taps - 1,
    padAfter: qLast - hi,
    phases: qLast - qFirst + 1,
    cropBefore: padBefore - qFirst * stride,
  };
}

function backpropInput({ inputs, backend, attrs }: KernelArgs<{ dy: TensorInfo; filter: TensorInfo }>): TensorInfo {
  const { dy, filter } = inputs;
  const info = convInfo(attrs.inputShape as number[], filter.shape, attrs);
  const [batch, outH, outW, outC] = dy.shape;
  const [kh, kw, inC] = filter.shape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const rows = phaseAxis(info.inHeight, outH, kh, sh, info.padInfo.top);
  const cols = phaseAxis(info.inWidth, outW, kw, sw, info.padInfo.left);
  return withScratch(backend, (s) => {
    if (rows.count <= 0 || cols.count <= 0) return s.zeros(info.inShape);
    // Filter [kh,kw,inC,outC] -> [tapsH,tapsW,outC,(phaseH,phaseW,inC)], taps reversed (correlation, not convolution).
    let f: TensorInfo = filter;
    const fullH = rows.taps * sh;
    const fullW = cols.taps * sw;
    if (fullH !== kh || fullW !== kw) {
      f = s.run(
        'PadV2',
        { x: f },
        {
          paddings: [
            [0, fullH - kh],
            [0, fullW - kw],
            [0, 0],
            [0, 0],
          ],
          constantValue: 0,
        },
      );
    }
    f = s.reshape(f, [rows.taps, sh, cols.taps, sw * inC, outC]);
    f = s.transpose(f, [0, 2, 4, 1, 3]);
    f = s.reverseBlocks(f, rows.taps * cols.taps);
    f = s.reshape(f, [rows.taps, cols.taps, outC, sh * sw * inC]);

    const d = s.crop(dy, rows.lo, cols.lo, rows.count, cols.count);
    const y = s.conv(d, f, [rows.padBefore, rows.padAfter, cols.padBefore, cols.padAfter]);

    let dx = y;
    if (sh * sw > 1) {
      // Pixel shuffle; wasm's DepthToSpace took 41 ms on [64,8,8,256], this transpose 2.6 ms.
      dx = s.reshape(y, [batch * rows.phases, cols.phases, sh, sw * inC]);
      dx = s.transpose(dx, [0, 2, 1, 3]);
      dx = s.reshape(dx, [batch, rows.phases * sh, cols.phases * sw, inC]);
    }
    return s.crop(dx, rows.cropBefore, cols.cropBefore, info.inHeight, info.inWidth);
  });
}

/**
 * XNNPACK's conv runs a GEMM with one column per output channel; with only one
 * or two (dW of a conv to 1 channel) it starves. Measured on 28x28x64 -> 5x5 -> 1,
 * batch 64: 69 ms as below, 36 ms by this route; from 4 channels on it loses.
 */
const FEW_OUT_CHANNELS = 2;

/**
 * Stride-1 dW as a conv over dy[o] (channels b) by x as the filter, so the GEMM
 * has one column per input channel instead; it yields dW with both spatial axes
 * reversed. Returns undefined when the padding does not fit (large explicit pads).
 */
function backpropFilterByDy(s: Scratch, x: TensorInfo, dy: TensorInfo, kh: number, kw: number, top: number, left: number): TensorInfo | undefined {
  const [, inH, inW] = x.shape;
  const [, outH, outW] = dy.shape;
  const pads: [number, number, number, number] = [kh - 1 - top, inH - outH + top, kw - 1 - left, inW - outW + left];
  if (pads.some((p) => p < 0)) return undefined;
  const grads = s.transpose(dy, [3, 1, 2, 0]);
  const images = s.transpose(x, [1, 2, 0, 3]);
  const y = s.conv(grads, images, pads);
  return s.reverseBlocks(s.transpose(y, [1, 2, 3, 0]), kh * kw);
}

function backpropFilter({ inputs, backend, attrs }: KernelArgs<{ x: TensorInfo; dy: TensorInfo }>): TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  const info = convInfo(x.shape, filterShape, attrs);
  const [, inH, inW] = x.shape;
  const [, outH, outW] = dy.shape;
  const [kh, kw] = filterShape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  return withScratch(backend, (s) => {
    if (sh === 1 && sw === 1 && dy.shape[3] <= FEW_OUT_CHANNELS) {
      const flipped = backpropFilterByDy(s, x, dy, kh, kw, top, left);
      if (flipped) return flipped;
    }
    // dW[i,j,c,o] = sum_{b,p,q} x[b, p*sh + i - top, q*sw + j - left, c] * dy[b,p,q,o]:
    // a conv over images x[c] with channels b, by the filter dy dilated by the stride.
    const images = s.transpose(x, [3, 1, 2, 0]);
    const taps = s.transpose(dy, [1, 2, 0, 3]);
    const bottom = Math.max(0, kh + (outH - 1) * sh - inH - top);
    const right = Math.max(0, kw + (outW - 1) * sw - inW - left);
    const y = s.conv(images, taps, [top, bottom, left, right], [sh, sw]);
    return s.transpose(s.crop(y, 0, 0, kh, kw), [1, 2, 0, 3]);
  });
}

/**
 * An explicit transpose pays for itself when the product is large and every
 * dimension is: with one side a vector (D's 1-unit head) wasm's transposed
 * loop is cheaper than copying the other operand (0.4 ms against 1.7).
 */
const TRANSPOSE_MIN_SIDE = 8;
const TRANSPOSE_MIN_PRODUCT = 1 << 18;

/** BatchMatMul that hands wasm's kernel untransposed operands when the product is large (see the header). */
function batchMatMul({ inputs, backend, attrs }: KernelArgs<{ a: TensorInfo; b: TensorInfo }>): TensorInfo {
  const { a, b } = inputs;
  const transposeA = attrs.transposeA === true;
  const transposeB = attrs.transposeB === true;
  const [aRows, aColumns] = a.shape.slice(-2);
  const [bRows, bColumns] = b.shape.slice(-2);
  const [m, k, n] = [transposeA ? aColumns : aRows, transposeA ? aRows : aColumns, transposeB ? bRows : bColumns];
  const large = Math.min(m, k, n) >= TRANSPOSE_MIN_SIDE && m * k * n >= TRANSPOSE_MIN_PRODUCT;
  const matMul = (x: TensorInfo, y: TensorInfo, flags: Attrs) =>
    builtinMatMul!.kernelFunc({ inputs: { a: x, b: y }, backend, attrs: { ...attrs, ...flags } as tf.NamedAttrMap }) as TensorInfo;
  if (!large || (!transposeA && !transposeB)) return matMul(a, b, {});
  return withScratch(backend, (s) => {
    const swapLast = (x: TensorInfo) => s.transpose(x, [...x.shape.slice(0, -2).map((_, i) => i), x.shape.length - 1, x.shape.length - 2]);
    return matMul(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b, { transposeA: false, transposeB: false });
  });
}

/** Installs the fast Conv2DBackpropInput, the missing Conv2DBackpropFilter and the transposing BatchMatMul for the wasm backend; idempotent. */
export function registerWasmConvKernels(): void {
  if (!tf.getKernel('Conv2D', BACKEND)) {
    // Otherwise importing the wasm backend later would overwrite our Conv2DBackpropInput.
    throw new Error("registerWasmConvKernels: import '@tensorflow/tfjs-backend-wasm' first");
  }
  const input = tf.getKernel(BACKPROP_INPUT, BACKEND);
  if (input?.kernelFunc !== backpropInput) {
    builtinBackpropInput = input;
    if (input) tf.unregisterKernel(BACKPROP_INPUT, BACKEND);
    tf.registerKernel({ kernelName: BACKPROP_INPUT, backendName: BACKEND, kernelFunc: backpropInput as tf.KernelFunc });
  }
  const filter = tf.getKernel(BACKPROP_FILTER, BACKEND);
  if (filter?.kernelFunc !== backpropFilter) {
    if (filter) tf.unregisterKernel(BACKPROP_FILTER, BACKEND);
    tf.registerKernel({ kernelName: BACKPROP_FILTER, backendName: BACKEND, kernelFunc: backpropFilter as tf.KernelFunc });
  }
  const matMul = tf.getKernel(MAT_MUL, BACKEND);
  if (matMul && matMul.kernelFunc !== batchMatMul) {
    builtinMatMul = matMul;
    tf.unregisterKernel(MAT_MUL, BACKEND);
    tf.registerKernel({ ...matMul, kernelFunc: batchMatMul as tf.KernelFunc });
  }
}

/** Restores wasm's own kernels (built-in Conv2DBackpropInput and BatchMatMul, no Conv2DBackpropFilter), e.g. for baseline benchmarks; idempotent. */
export function unregisterWasmConvKernels(): void {
  if (tf.getKernel(BACKPROP_INPUT, BACKEND)?.kernelFunc === backpropInput) {
    tf.unregisterKernel(BACKPROP_INPUT, BACKEND);
    if (builtinBackpropInput) {
      tf.registerKernel(builtinBackpropInput);
      // Setup funcs run when a backend initializes; one that already has needs it run by hand.
      const backend = tf.findBackend(BACKEND);
      if (backend) builtinBackpropInput.setupFunc?.(backend);
    }
  }
  if (tf.getKernel(BACKPROP_FILTER, BACKEND)?.kernelFunc === backpropFilter) tf.unregisterKernel(BACKPROP_FILTER, BACKEND);
  if (tf.getKernel(MAT_MUL, BACKEND)?.kernelFunc === batchMatMul && builtinMatMul) {
    tf.unregisterKernel(MAT_MUL, BACKEND);
    tf.registerKernel(builtinMatMul);
  }
}
