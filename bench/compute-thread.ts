/**
 * What computing in a worker_thread costs a Node worker: one default DCGAN
 * step (lossAndGrads, batch 64, wasm) on the worker's own thread against the
 * same step in the compute thread (runtime/node/compute-thread.ts), in the same
 * run, alternating. Each step is at a new weights version, as a round's is, so
 * the thread's figure includes copying the weights in and transferring the
 * gradients back. Also: the longest the worker's own thread went without
 * running a timer during a step (how late a heartbeat could be), and the cost
 * of encoding the gradients on that thread with each codec.
 *
 * With --threads N, a third compute thread runs tfjs-wasm's threaded build
 * with N threads (runtime/node/wasm-threads.ts), alternating with the others.
 *
 *   npx tsx bench/compute-thread.ts [--batch 64] [--repeats 9] [--threads 2] [--quick]
 */
import { cpus, loadavg } from 'node:os';
import { listCodecs } from '../shared/codec/index.ts';
import { arraysToTensors } from '../shared/codec/named.ts';
import { getModel } from '../shared/models/registry.ts';
import type { DataShape } from '../shared/models/types.ts';
import { LocalCompute, type StepCompute, type StepRequest } from '../shared/worker/compute.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { startComputeThread } from '../runtime/node/compute-thread.ts';
import { benchOptions } from './lib/options.ts';
import { printTable } from './lib/table.ts';

const USAGE = `Usage: npx tsx bench/compute-thread.ts [options]

One DCGAN step on the worker's own thread against the same step in the compute thread, alternating.

  --batch N            batch per step (default 64; quick 8)
  --repeats N          timed steps of each, after two warm-up steps (default 9; quick 2)
  --threads N          also time a compute thread whose wasm has N threads (default: none)
  --quick              a smoke run
  --help               print this and exit
`;

const values = benchOptions(USAGE, { batch: { type: 'string' }, repeats: { type: 'string' }, threads: { type: 'string' } });
const batchSize = Number(values.batch ?? (values.quick ? 8 : 64));
const repeats = Number(values.repeats ?? (values.quick ? 2 : 9));
/** The heartbeat-like timer whose lateness is measured: a 10 ms tick. */
const TICK_MS = 10;

const model = { id: 'dcgan', config: {} };
const data: DataShape = { imageShape: [28, 28, 1], classes: 10 };
const spec = getModel(model.id);

await selectNodeBackend('wasm');
const local = new LocalCompute();
const thread = await startComputeThread({ backend: 'wasm', wasmThreads: 1 });
const wasmThreads = Number(values.threads ?? 1);
const threaded = wasmThreads > 1 ? await startComputeThread({ backend: 'wasm', wasmThreads }) : undefined;
const builder = spec.createTrainer(spec.parseConfig(model.config), data);
const shapes = await local.shapes(model, data);
const pixels = data.imageShape.reduce((product, size) => product * size);
let version = 0;

/** A step at a new weights version (as each round's is) on one of the two computes. */
function request(): StepRequest {
  version += 1;
  return {
    model,
    data,
    weightsHash: `v${version}`,
    weights: builder.initialWeights(version),
    batch: {
      count: batchSize,
      images: Float32Array.from({ length: batchSize * pixels }, (_, i) => ((i * 7919) % 256) / 255),
      labels: Int32Array.from({ length: batchSize }, (_, i) => i % data.classes),
    },
    seed: version,
    sampleIndices: Array.from({ length: batchSize }, (_, i) => i),
    throttle: 1,
  };
}

/** Times one step, and the longest gap between ticks of a timer on this thread meanwhile. */
async function timed(compute: StepCompute, step: StepRequest) {
  let last = performance.now();
  let longestGap = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, TICK_MS);
  const started = performance.now();
  const result = await compute.step(step);
  const ms = performance.now() - started;
  clearInterval(ticker);
  longestGap = Math.max(longestGap, performance.now() - last);
  return { ms, stallMs: longestGap, grads: result.grads };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const computes: Record<string, StepCompute> = { 'main thread': local, 'compute thread': thread };
if (threaded) computes[`compute thread, ${wasmThreads} wasm threads`] = threaded;
const runs = Object.fromEntries(Object.keys(computes).map((name) => [name, { ms: [] as number[], stallMs: [] as number[] }]));

for (const compute of Object.values(computes)) for (let warm = 0; warm < 2; warm++) await compute.step(request());
let grads = {};
for (let repeat = 0; repeat < repeats; repeat++) {
  // Alternating, the order swapped every repeat: a load that comes and goes falls on both.
  const order = repeat % 2 === 0 ? Object.entries(computes) : Object.entries(computes).reverse();
  for (const [name, compute] of order) {
    const run = await timed(compute, request());
    runs[name].ms.push(run.ms);
    runs[name].stallMs.push(run.stallMs);
    grads = run.grads;
  }
}
for (const compute of Object.values(computes)) compute.dispose();

const base = runs['main thread'].ms;
// Each repeat's two steps ran back to back: their difference cancels most of a load that comes and goes.
const paired = (run: number[]) => median(run.map((ms, repeat) => ms - base[repeat]));
console.log(`${cpus()[0]?.model.trim()}, ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at the end`);
console.log(`dcgan (default config), batch ${batchSize}, wasm, ${repeats} alternating steps each, medians (min-max)`);
printTable(
  ['where', 'step ms', 'vs main thread', 'paired difference ms', 'longest timer gap ms'],
  Object.entries(runs).map(([name, run]) => [
    name,
    `${median(run.ms).toFixed(0)} (${Math.min(...run.ms).toFixed(0)}-${Math.max(...run.ms).toFixed(0)})`,
    `${(median(run.ms) / median(base)).toFixed(3)}x`,
    paired(run.ms).toFixed(1),
    `${median(run.stallMs).toFixed(0)} (max ${Math.max(...run.stallMs).toFixed(0)})`,
  ]),
);
console.log('');
console.log("Encoding the step's gradients for the update, on the worker's own thread (median of 5):");
printTable(
  ['codec', 'encode ms'],
  listCodecs().map((codec) => {
    const times = Array.from({ length: 5 }, () => {
      const started = performance.now();
      codec.encode(arraysToTensors(grads, shapes));
      return performance.now() - started;
    });
    return [codec.id, median(times).toFixed(1)];
  }),
);
process.exit(0);
