/**
 * Conv2D gradient kernels on the wasm backend: ours (shared/tfjs/wasm-conv-kernels.ts)
 * against wasm's built-in Conv2DBackpropInput and the cpu backend, on DCGAN-sized
 * layers at batch 64.
 *
 *   npx tsx bench/conv-kernels.ts [--repeats 5] [--batch 64] [--cpu-batch 8] [--cpu-repeats 1] [--quick]
 *
 * --quick is a smoke run: batch 16 (cpu 2), one warm-up and one timed run.
 *
 * Each wasm cell is the median of the repeats after warm-up, in milliseconds.
 * The cpu backend's Conv2DBackpropFilter needs about a minute for the second
 * layer at batch 64, so cpu runs at a smaller batch, scaled linearly to the
 * wasm batch (conv cost is linear in the batch), and is warmed up and repeated
 * only where one run takes under a second.
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import { benchOptions } from './lib/options.ts';

type Shape4 = [number, number, number, number];
type Mode = 'ours' | 'builtin' | 'cpu';

const USAGE = `Usage: npx tsx bench/conv-kernels.ts [options]

Conv2D gradient kernels on wasm (the project's and the built-in) and on cpu, on DCGAN-sized layers.

  --batch N            batch on wasm (default 64; quick 16)
  --cpu-batch N        batch on cpu, scaled linearly to --batch (default 8; quick 2)
  --repeats N          timed runs on wasm after the warm-up (default 5; quick 1)
  --cpu-repeats N      runs on cpu where one takes over a second (default 1)
  --quick              a smoke run: small batches, one warm-up and one timed run
  --help               print this and exit
`;

const values = benchOptions(USAGE, {
  batch: { type: 'string' },
  'cpu-batch': { type: 'string' },
  repeats: { type: 'string' },
  'cpu-repeats': { type: 'string' },
});
const QUICK = values.quick;
const REPEATS = Number(values.repeats ?? (QUICK ? 1 : 5));
const WARMUP = QUICK ? 1 : 2;
const BATCH = Number(values.batch ?? (QUICK ? 16 : 64));
const CPU_BATCH = Number(values['cpu-batch'] ?? (QUICK ? 2 : 8));
const CPU_REPEATS = Number(values['cpu-repeats'] ?? 1);

const BPI = 'Conv2DBackpropInput';

// The built-in kernel's setup ran when the backend initialized, so it can be swapped back in later.
await tf.setBackend('wasm');
const builtinInput = tf.getKernel(BPI, 'wasm');
registerWasmConvKernels();
const oursInput = tf.getKernel(BPI, 'wasm');

function swapInput(config: tf.KernelConfig): void {
  tf.unregisterKernel(BPI, 'wasm');
  tf.registerKernel(config);
}

/** Selects the backend; 'builtin' keeps our Conv2DBackpropFilter because wasm has none. */
async function use(mode: Mode): Promise<void> {
  await tf.setBackend(mode === 'cpu' ? 'cpu' : 'wasm');
  if (mode !== 'cpu') swapInput(mode === 'ours' ? oursInput : builtinInput);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const batchOf = (mode: Mode) => (mode === 'cpu' ? CPU_BATCH : BATCH);

/** Median wall time of `run` scaled to BATCH; its returned tensors are read back (so lazy work counts) and disposed. */
function time(mode: Mode, run: () => tf.Tensor | tf.Tensor[]): number {
  const once = () => {
    const start = performance.now();
    const out = run();
    for (const t of Array.isArray(out) ? out : [out]) t.dataSync();
    const elapsed = performance.now() - start;
    tf.dispose(out);
    return elapsed;
  };
  const samples: number[] = [];
  if (mode === 'cpu') {
    // Warming up only pays where JIT time is not lost in the run time.
    samples.push(once());
    if (samples[0] < 1000) samples.splice(0, 1, ...Array.from({ length: Math.max(CPU_REPEATS, 3) }, once));
    else for (let i = 1; i < CPU_REPEATS; i++) samples.push(once());
  } else {
    for (let i = 0; i < WARMUP; i++) once();
    for (let i = 0; i < REPEATS; i++) samples.push(once());
  }
  return (median(samples) * BATCH) / batchOf(mode);
}

interface Row {
  name: string;
  ms: Partial<Record<Mode, number>>;
}

interface Layer {
  name: string;
  /** Without the batch dimension. */
  x: [number, number, number];
  filter: Shape4;
  stride: number;
}

const layers: Layer[] = [
  { name: 'conv1 [28,28,1] 4x4 s2 ->64 (= convT2 ->[28,28,1])', x: [28, 28, 1], filter: [4, 4, 1, 64], stride: 2 },
  { name: 'conv2 [14,14,64] 4x4 s2 ->128 (= convT1 ->[14,14,64])', x: [14, 14, 64], filter: [4, 4, 64, 128], stride: 2 },
];

const progress = (what: string, mode: Mode) => process.stderr.write(`${what} on ${mode}...\n`);

const rows: Row[] = [];
const modes: Mode[] = ['ours', 'builtin', 'cpu'];

for (const layer of layers) {
  const attrs = { strides: [layer.stride, layer.stride], pad: 'same', dataFormat: 'NHWC' };
  const forward: Row = { name: `${layer.name}: forward Conv2D (reference)`, ms: {} };
  const input: Row = { name: `${layer.name}: input grad / convT forward (Conv2DBackpropInput)`, ms: {} };
  const filter: Row = { name: `${layer.name}: filter grad (Conv2DBackpropFilter)`, ms: {} };
  for (const mode of modes) {
    progress(layer.name, mode);
    await use(mode);
    const batch = batchOf(mode);
    const xShape: Shape4 = [batch, ...layer.x];
    const dyShape: Shape4 = [batch, layer.x[0] / layer.stride, layer.x[1] / layer.stride, layer.filter[3]];
    const [x, w, dy] = [tf.randomNormal(xShape), tf.randomNormal(layer.filter), tf.randomNormal(dyShape)];
    if (mode !== 'builtin') {
      forward.ms[mode] = time(mode, () => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, layer.stride, 'same'));
      filter.ms[mode] = time(mode, () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: layer.filter }) as tf.Tensor);
    }
    input.ms[mode] = time(mode, () => tf.engine().runKernel(BPI, { dy, filter: w }, { ...attrs, inputShape: xShape }) as tf.Tensor);
    tf.dispose([x, w, dy]);
  }
  rows.push(forward, input, filter);
}

/** Discriminator-like: two strided convs, gradients w.r.t. the image (as in G's step) and both filters. */
function discriminator(image: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor): tf.Tensor {
  const h = tf.leakyRelu(tf.conv2d(image as tf.Tensor4D, w1 as tf.Tensor4D, 2, 'same'), 0.2);
  return tf.leakyRelu(tf.conv2d(h, w2 as tf.Tensor4D, 2, 'same'), 0.2);
}

/** Generator-like: two strided transposed convs from a 7x7x128 map to a 28x28x1 image. */
function generator(z: tf.Tensor, w3: tf.Tensor, w4: tf.Tensor): tf.Tensor {
  const batch = z.shape[0];
  const h = tf.leakyRelu(tf.conv2dTranspose(z as tf.Tensor4D, w3 as tf.Tensor4D, [batch, 14, 14, 64], 2, 'same'), 0.2);
  return tf.tanh(tf.conv2dTranspose(h, w4 as tf.Tensor4D, [batch, 28, 28, 1], 2, 'same'));
}

const dStep: Row = { name: `step: D (2 conv) grads w.r.t. image, w1, w2`, ms: {} };
const gdStep: Row = { name: `step: G (2 convT) -> D (2 conv) grads w.r.t. w1..w4`, ms: {} };
for (const mode of modes) {
  progress('steps', mode);
  await use(mode);
  const batch = batchOf(mode);
  const image = tf.randomNormal([batch, 28, 28, 1]);
  const z = tf.randomNormal([batch, 7, 7, 128]);
  const w1 = tf.randomNormal([4, 4, 1, 64], 0, 0.05);
  const w2 = tf.randomNormal([4, 4, 64, 128], 0, 0.05);
  const w3 = tf.randomNormal([4, 4, 64, 128], 0, 0.05);
  const w4 = tf.randomNormal([4, 4, 1, 64], 0, 0.05);
  const r = tf.randomNormal([batch, 7, 7, 128]);
  dStep.ms[mode] = time(mode, () => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => discriminator(a, b, c).mul(r).sum())([image, w1, w2]));
  gdStep.ms[mode] = time(mode, () =>
    tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
      discriminator(generator(z, c, d), a, b)
        .mul(r)
        .sum(),
    )([w1, w2, w3, w4]),
  );
  tf.dispose([image, z, w1, w2, w3, w4, r]);
}
rows.push(dStep, gdStep);

const fmt = (ms: number | undefined) => (ms === undefined ? 'n/a' : ms.toFixed(1));
const ratio = (other: number | undefined, ours: number | undefined) => (other === undefined || ours === undefined ? 'n/a' : `${(other / ours).toFixed(2)}x`);

console.log(`tfjs ${tf.version_core}, wasm ${version_wasm} (SIMD ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')}, threads ${getThreadsCount()}), batch ${BATCH}`);
console.log(`wasm: median of ${REPEATS} after ${WARMUP} warm-up runs; cpu: at batch ${CPU_BATCH} scaled x${BATCH / CPU_BATCH}, runs over 1 s unwarmed; ms`);
console.log(`"built-in" = wasm's own Conv2DBackpropInput`);
console.log('(wasm has no Conv2DBackpropFilter, so the built-in steps use ours for it); speedup = other / ours\n');
const header = ['workload', 'wasm ours', 'wasm built-in', 'cpu', 'speedup vs built-in', 'speedup vs cpu'];
const table = rows.map((row) => [
  row.name,
  fmt(row.ms.ours),
  fmt(row.ms.builtin),
  fmt(row.ms.cpu),
  ratio(row.ms.builtin, row.ms.ours),
  ratio(row.ms.cpu, row.ms.ours),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((cells) => cells[i].length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w, i) => (i === 0 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|')}|`);
for (const cells of table) console.log(line(cells));
