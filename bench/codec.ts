/**
 * Codec throughput on a DCGAN-sized gradient set, against a JSON baseline
 * measured in the same run, and each codec's update bytes per sample trained in sync and local mode.
 * Run: npx tsx bench/codec.ts [--batch 32] [--local-steps 8] [--quick]
 * A codec with error feedback (+ef) sends the same bytes; its encode also decodes and keeps the residual.
 * MB/s counts float32 payload bytes (4 per parameter), so codecs compare on the same work.
 * --quick times each codec for a tenth of the budget (a smoke run: fewer repeats, noisier medians).
 */
import { encodeWithFeedback, listCodecs, supportsFeedback, type NamedArrays, type NamedTensors, type TensorCodec } from '../shared/codec/index.ts';
import { mulberry32 } from '../shared/codec/test-utils.ts';
import { benchOptions } from './lib/options.ts';

// MNIST DCGAN: generator dense + 2 deconvs, discriminator 2 convs + dense (~700k parameters).
const SHAPES: Record<string, number[]> = {
  'gen/dense/kernel': [100, 3136],
  'gen/dense/bias': [3136],
  'gen/deconv1/kernel': [5, 5, 32, 64],
  'gen/deconv1/bias': [32],
  'gen/deconv2/kernel': [5, 5, 1, 32],
  'gen/deconv2/bias': [1],
  'disc/conv1/kernel': [5, 5, 1, 64],
  'disc/conv1/bias': [64],
  'disc/conv2/kernel': [5, 5, 64, 128],
  'disc/conv2/bias': [128],
  'disc/dense/kernel': [6272, 20],
  'disc/dense/bias': [20],
};

function gradients(): NamedTensors {
  const rand = mulberry32(42);
  const tensors: NamedTensors = {};
  for (const [name, shape] of Object.entries(SHAPES)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    // Gradient-like: centred, mostly small, a few larger.
    for (let i = 0; i < data.length; i++) data[i] = (rand() + rand() + rand() - 1.5) * 10 ** (rand() * 3 - 5);
    tensors[name] = { dtype: 'float32', shape, data };
  }
  return tensors;
}

// What a naive implementation would send: numbers as JSON arrays.
const jsonCodec: TensorCodec = {
  id: 'json',
  lossless: true,
  encode(tensors) {
    const list = Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: Array.from(t.data) }));
    return new TextEncoder().encode(JSON.stringify({ codec: 'json', tensors: list }));
  },
  decode(bytes) {
    const { tensors } = JSON.parse(new TextDecoder().decode(bytes));
    const out: NamedTensors = {};
    for (const t of tensors) out[t.name] = { dtype: t.dtype, shape: t.shape, data: Float32Array.from(t.data) };
    return out;
  },
  // Not served by the door; a float32 as JSON takes at most ~16 characters.
  maxEncodedBytes: (shapes) => Object.values(shapes).reduce((sum, shape) => sum + 64 + 16 * shape.reduce((a, b) => a * b, 1), 64),
};

/** Median milliseconds of `fn` over enough runs to last ~`budgetMs`, after a warm-up. */
function time(fn: () => void, budgetMs: number): number {
  fn();
  const times: number[] = [];
  const deadline = performance.now() + budgetMs;
  while (times.length < 3 || (performance.now() < deadline && times.length < 200)) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

const USAGE = `Usage: npx tsx bench/codec.ts [--quick]

Encode and decode speed and size of every codec on a DCGAN-sized gradient set, against JSON.

  --batch N            samples per worker and step, for bytes per sample (default 32, training.batchSize's default)
  --local-steps H      inner steps per update in local mode, for bytes per sample (default 8, training.localSteps's default)
  --quick              a smoke run: a tenth of the time per codec
  --help               print this and exit
`;
const options = benchOptions(USAGE, { batch: { type: 'string', default: '32' }, 'local-steps': { type: 'string', default: '8' } });
const QUICK = options.quick;
const batch = Number(options.batch);
const localSteps = Number(options['local-steps']);
const tensors = gradients();
const params = Object.values(tensors).reduce((n, t) => n + t.data.length, 0);
const payloadMB = (params * 4) / 1e6;

interface Row {
  id: string;
  bytes: number;
  encodeMs: number;
  decodeMs: number;
}

const rows: Row[] = [];
for (const codec of [jsonCodec, ...listCodecs()]) {
  const bytes = codec.encode(tensors);
  const budget = (codec === jsonCodec ? 3000 : 1500) / (QUICK ? 10 : 1);
  const encodeMs = time(() => void codec.encode(tensors), budget);
  const decodeMs = time(() => void codec.decode(bytes), budget);
  rows.push({ id: codec.id, bytes: bytes.length, encodeMs, decodeMs });
  if (!supportsFeedback(codec)) continue;
  // Error feedback: the same bytes; the encode adds the residual, decodes what it sent and keeps the difference.
  const grads: NamedArrays = Object.fromEntries(Object.entries(tensors).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  const shapes = Object.fromEntries(Object.entries(tensors).map(([name, tensor]) => [name, tensor.shape]));
  let residuals: NamedArrays = {};
  const feedbackMs = time(() => void (residuals = encodeWithFeedback(codec, grads, residuals, shapes).residuals), budget);
  rows.push({ id: `${codec.id}+ef`, bytes: bytes.length, encodeMs: feedbackMs, decodeMs });
}

const json = rows[0];
const f32 = rows.find((r) => r.id === 'f32')!;
console.log(`${params} float32 parameters in ${Object.keys(tensors).length} tensors (${payloadMB.toFixed(2)} MB), Node ${process.version}`);
console.log(`bytes per sample: one update per ${batch} samples in sync mode, per ${batch} x ${localSteps} in local mode (H=${localSteps})`);
console.log('codec   | bytes     | encode MB/s | decode MB/s | speed x JSON (enc+dec) | bytes / f32 | bytes/sample sync | bytes/sample local');
console.log('--------|-----------|-------------|-------------|------------------------|-------------|-------------------|-------------------');
for (const r of rows) {
  const speedup = (json.encodeMs + json.decodeMs) / (r.encodeMs + r.decodeMs);
  console.log(
    [
      r.id.padEnd(7),
      String(r.bytes).padStart(9),
      (payloadMB / (r.encodeMs / 1000)).toFixed(0).padStart(11),
      (payloadMB / (r.decodeMs / 1000)).toFixed(0).padStart(11),
      `${speedup.toFixed(1)}x`.padStart(22),
      (r.bytes / f32.bytes).toFixed(3).padStart(11),
      (r.bytes / batch).toFixed(0).padStart(17),
      (r.bytes / (batch * localSteps)).toFixed(0).padStart(18),
    ].join(' | '),
  );
}
