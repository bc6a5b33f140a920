/**
 * One DCGAN training step (lossAndGrads at the default config) on each Node
 * backend, against wasm measured in the same run.
 *
 *   npx tsx bench/backends.ts [--batch 64] [--cpu-batch 8] [--repeats 5] [--backends tensorflow,webgpu,wasm,cpu] [--quick]
 *
 * --quick is a smoke run: batch 8 (cpu 1), one timed step, children stopped after 2 minutes.
 *
 * webgpu needs an adapter. Without a GPU, Chromium's SwiftShader provides one:
 *
 *   LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json npx tsx bench/backends.ts
 *
 * webgpu is forced here, as `--backend webgpu` forces it in the worker, so a
 * software adapter is measured too (the worker would pass it over on its own).
 * Each backend runs in its own child process: tfjs backends are process-global.
 * A step is the median of the repeats after warm-up (the first steps compile
 * shaders or JIT code). A step that takes longer than SLOW_STEP_MS on its first
 * run is measured once, cold (`runs` says so): compiling is then a small part
 * of it, and repeats would take minutes. The cpu backend runs at --cpu-batch,
 * being that slow; samples/s is per its own batch. A backend that cannot start
 * is listed with the reason.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../shared/data/mnist.ts';
import { dcgan, DcganTrainer } from '../shared/models/gan/dcgan.ts';
import { NODE_BACKENDS, selectNodeBackend } from '../runtime/node/backend.ts';
import { benchOptions } from './lib/options.ts';

interface Measurement {
  backend: string;
  device: string;
  batch: number;
  stepMs: number;
  /** How many timed steps the median is over; 0 means one cold step. */
  runs: number;
  samplesPerSecond: number;
}

type Outcome = Measurement | { backend: string; error: string };

const USAGE = `Usage: npx tsx bench/backends.ts [options]

One DCGAN training step on each Node backend, against wasm measured in the same run.

  --backends LIST      backends to measure, comma-separated (default ${NODE_BACKENDS.join(',')})
  --batch N            batch per step (default 64; quick 8)
  --cpu-batch N        batch on the far slower cpu backend (default 8; quick 1)
  --repeats N          timed steps after the warm-up (default 5; quick 1)
  --quick              a smoke run: small batches, one timed step
  --child BACKEND      (internal) measure BACKEND in this process and print RESULT <json>
  --help               print this and exit
`;

const values = benchOptions(USAGE, {
  backends: { type: 'string', default: NODE_BACKENDS.join(',') },
  batch: { type: 'string' },
  'cpu-batch': { type: 'string' },
  repeats: { type: 'string' },
  child: { type: 'string' },
});
const QUICK = values.quick;
const BATCH = Number(values.batch ?? (QUICK ? 8 : 64));
const CPU_BATCH = Number(values['cpu-batch'] ?? (QUICK ? 1 : 8));
const REPEATS = Number(values.repeats ?? (QUICK ? 1 : 5));
const WARMUP = 2;
// A first step slower than this is measured once, cold: shader compiling is a few seconds at most.
const SLOW_STEP_MS = 5_000;
// A child that takes longer than this is stuck (the slowest here, SwiftShader at batch 64, needs about 2.5 minutes).
const CHILD_TIMEOUT_MS = (QUICK ? 2 : 10) * 60_000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** In the child: times lossAndGrads on one forced backend and prints `RESULT <json>`. */
async function measure(backend: string, batchSize: number): Promise<Measurement> {
  const choice = await selectNodeBackend(backend);
  const trainer = new DcganTrainer(dcgan.defaults, 42);
  const batch = loadMnist().batch(Array.from({ length: batchSize }, (_, i) => i * 97));
  let step = 0;
  const once = async () => {
    const noise = trainer.drawNoise(batchSize, step++);
    const start = performance.now();
    await trainer.lossAndGrads(batch, noise);
    return performance.now() - start;
  };
  const samples = [await once()];
  const cold = samples[0] >= SLOW_STEP_MS;
  if (!cold) {
    for (let i = 1; i < WARMUP; i++) await once();
    samples.length = 0;
    for (let i = 0; i < REPEATS; i++) samples.push(await once());
  }
  trainer.dispose();
  const stepMs = median(samples);
  return {
    backend: choice.name,
    device: choice.device,
    batch: batchSize,
    stepMs,
    runs: cold ? 0 : samples.length,
    samplesPerSecond: (batchSize / stepMs) * 1000,
  };
}

/** In the parent: runs one backend's child (by PID, killed when it overstays) and collects its line. */
function runChild(backend: string, batchSize: number): Promise<Outcome> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--child', backend, '--batch', String(batchSize), '--repeats', String(REPEATS)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const result = output.match(/^RESULT (.*)$/m);
      if (result) return resolve(JSON.parse(result[1]) as Outcome);
      const why = signal ? `killed by ${signal}` : `exited with ${code}`;
      resolve({ backend, error: `${why}: ${output.trim().split('\n').slice(-3).join(' | ')}` });
    });
  });
}

/** Two decimals, or two significant digits below 0.1 (software adapters land near 0.01x). */
function ratio(value: number): string {
  return value >= 0.1 ? value.toFixed(2) : value.toPrecision(2);
}

function printTable(outcomes: Outcome[]): void {
  const wasm = outcomes.find((outcome): outcome is Measurement => outcome.backend === 'wasm' && 'stepMs' in outcome);
  const rows = outcomes.map((outcome) =>
    'error' in outcome
      ? [outcome.backend, '-', '-', '-', '-', '-', `not measured: ${outcome.error}`]
      : [
          outcome.backend,
          String(outcome.batch),
          outcome.stepMs.toFixed(0),
          outcome.runs === 0 ? '1 cold' : String(outcome.runs),
          outcome.samplesPerSecond.toFixed(1),
          wasm ? `${ratio(outcome.samplesPerSecond / wasm.samplesPerSecond)}x` : '-',
          outcome.device,
        ],
  );
  const header = ['backend', 'batch', 'step ms', 'runs', 'samples/s', 'vs wasm', 'device'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ');
  console.log(`DCGAN ${JSON.stringify(dcgan.defaults)}, one lossAndGrads step (median of the runs, after warm-up unless cold)`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

const childBackend = values.child;
if (childBackend) {
  try {
    process.stdout.write(`RESULT ${JSON.stringify(await measure(childBackend, BATCH))}\n`);
  } catch (error) {
    process.stdout.write(`RESULT ${JSON.stringify({ backend: childBackend, error: (error as Error).message.split('\n')[0] })}\n`);
  }
  // A Dawn device keeps the event loop alive.
  process.exit(0);
} else {
  const backends = values.backends.split(',');
  const outcomes: Outcome[] = [];
  for (const backend of backends) {
    process.stderr.write(`measuring ${backend}...\n`);
    outcomes.push(await runChild(backend, backend === 'cpu' ? CPU_BATCH : BATCH));
  }
  printTable(outcomes);
}
