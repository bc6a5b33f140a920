/**
 * Aggregation rule throughput: each registered rule over 8 updates of 3 M
 * floats, against a plain memcpy (Float32Array.set of the same bytes)
 * measured in the same run. Run: npx tsx bench/aggregate.ts [--runs N] [--quick]
 * GB/s counts the float32 bytes read once (8 x 3 M x 4 = 96 MB); a rule that
 * passes over them several times (norms, sort, distances) shows below 1/passes of memcpy.
 */
import { cpus, loadavg } from 'node:os';
import { listRules, type AggregationOptions, type WeightedUpdate } from '../shared/aggregate/index.ts';
import { createUniform } from '../shared/training/random.ts';
import { benchOptions } from './lib/options.ts';

const UPDATES = 8;
const FLOATS = 3_000_000;
// Split as a model's tensors are: a few large kernels and small biases.
const TENSORS: Record<string, number> = { 'dense/kernel': 1_600_000, 'conv2/kernel': 1_000_000, 'conv1/kernel': 399_000, 'dense/bias': 1000 };
// The job's defaults (coordinator/config.ts), with centered-clip at its default iterations.
const OPTIONS: AggregationOptions = { maxShare: 0.5, clipNorm: 0, trimFraction: 0.25, iterations: 5 };
const USAGE = `Usage: npx tsx bench/aggregate.ts [--runs N] [--quick]

Each registered aggregation rule's GB/s over ${UPDATES} updates of ${FLOATS / 1e6} M floats, beside memcpy in the same run.
  --runs N   timed runs per rule; the median is printed (default 5; --quick: 1)
`;
const options = benchOptions(USAGE, { runs: { type: 'string', default: '5' } });
const runs = options.quick ? 1 : Number(options.runs);
if (!(Number.isInteger(runs) && runs >= 1)) {
  process.stderr.write(`--runs must be a whole number >= 1, got ${options.runs}\n`);
  process.exit(2);
}

/** Gradient-like updates: a shared signal plus each worker's noise, one of them sign-flipped x10 so clipping works. */
function updates(): WeightedUpdate[] {
  const rand = createUniform(7);
  const signal = Object.fromEntries(Object.entries(TENSORS).map(([name, size]) => [name, Float32Array.from({ length: size }, () => rand() - 0.5)]));
  return Array.from({ length: UPDATES }, (_, k) => ({
    weight: 16 + 8 * (k % 3),
    tensors: Object.fromEntries(
      Object.entries(signal).map(([name, values]) => [name, values.map((value) => (k === 0 ? -10 : 1) * (value + 2 * (rand() - 0.5)))]),
    ),
  }));
}

const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1];

/**
 * Median wall and CPU milliseconds of `fn` over `runs` runs, after one
 * warm-up. CPU time as well: on a shared machine the wall clock also counts
 * the time other processes held the core.
 */
function time(fn: () => void): { ms: number; cpuMs: number } {
  fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    const usage = process.cpuUsage();
    fn();
    const used = process.cpuUsage(usage);
    wall.push(performance.now() - start);
    cpu.push((used.user + used.system) / 1000);
  }
  return { ms: median(wall), cpuMs: median(cpu) };
}

const input = updates();
const bytes = UPDATES * FLOATS * 4;
const destination = new Float32Array(UPDATES * FLOATS);
const memcpy = time(() => {
  let offset = 0;
  for (const update of input) {
    for (const values of Object.values(update.tensors)) {
      destination.set(values, offset);
      offset += values.length;
    }
  }
});

const rows = [{ id: 'memcpy', ...memcpy }, ...listRules().map((rule) => ({ id: rule.id, ...time(() => void rule.aggregate(input, OPTIONS)) }))];
const gbps = (ms: number) => bytes / 1e9 / (ms / 1000);
console.log(
  `${UPDATES} updates x ${FLOATS / 1e6} M floats (${(bytes / 1e6).toFixed(0)} MB read), median of ${runs} runs, Node ${process.version}, load ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`,
);
console.log('rule          | wall ms |  GB/s | x memcpy | CPU ms | GB/CPU-s | x memcpy');
console.log('--------------|---------|-------|----------|--------|----------|---------');
for (const row of rows) {
  console.log(
    [
      row.id.padEnd(13),
      row.ms.toFixed(1).padStart(7),
      gbps(row.ms).toFixed(2).padStart(5),
      (memcpy.ms / row.ms).toFixed(3).padStart(8),
      row.cpuMs.toFixed(0).padStart(6),
      gbps(row.cpuMs).toFixed(2).padStart(8),
      (memcpy.cpuMs / row.cpuMs).toFixed(3).padStart(8),
    ].join(' | '),
  );
}
