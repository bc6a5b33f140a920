/**
 * What scoring sample quality during training costs, and whether it stays
 * off the coordinator's path: the scoring thread (coordinator/quality/)
 * scores the `npm start` model (DCGAN at its defaults) at several
 * output.evalSamples, while this thread's event-loop delay is measured,
 * against the same measurement with the thread idle (the baseline).
 * Run: npx tsx bench/quality-thread.ts [--quick] [--model ID]
 * --quick scores 64 and 250 samples only; --model scores another family at its defaults (dcgan by default).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getModel } from '../shared/models/registry.ts';
import { ScoringThread } from '../coordinator/quality/scoring-thread.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { benchOptions } from './lib/options.ts';

const options = benchOptions('Usage: npx tsx bench/quality-thread.ts [--quick] [--model ID]\n', { model: { type: 'string', default: 'dcgan' } });
const COUNTS = options.quick ? [64, 250] : [64, 250, 500, 1000];

await selectNodeBackend('wasm');
const spec = getModel(options.model);
const config = spec.parseConfig({});
const trainer = spec.createTrainer(config);
const weights = trainer.initialWeights(1);
trainer.dispose();
const thread = new ScoringThread();
const job = (count: number) => ({ model: { id: spec.id, config }, dataset: { id: 'mnist', heldOutFraction: 0.1, splitSeed: 1 }, weights, count, seed: 1 });

/** This thread's event-loop delay (p99 and max, ms) while `work` runs, with a timer ticking as a coordinator's would. */
async function loopDelayDuring<T>(work: () => Promise<T>): Promise<{ result: T; p99: number; max: number; ms: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  const tick = setInterval(() => {}, 5);
  histogram.enable();
  const started = performance.now();
  const result = await work();
  const ms = performance.now() - started;
  histogram.disable();
  clearInterval(tick);
  return { result, p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6, ms };
}

// The first request starts the thread and loads the evaluator (classifier, held-out features): timed apart.
const warm = await loopDelayDuring(() => thread.score(job(COUNTS[0])));
const idle = await loopDelayDuring(() => new Promise((resolve) => setTimeout(resolve, 2000)));
const rows: string[][] = [];
for (const count of COUNTS) {
  const measured = await loopDelayDuring(() => thread.score(job(count)));
  rows.push([
    String(count),
    (measured.ms / 1000).toFixed(2),
    (measured.result.ms / 1000).toFixed(2),
    measured.p99.toFixed(1),
    measured.max.toFixed(1),
    (measured.p99 / idle.p99).toFixed(2),
  ]);
}
await thread.close();

console.log(
  `\n${spec.id} at its defaults; scoring thread: first request (thread start, evaluator load, ${COUNTS[0]} samples) ${(warm.ms / 1000).toFixed(1)} s`,
);
console.log(`event-loop delay of this thread with the scorer idle (baseline): p99 ${idle.p99.toFixed(1)} ms, max ${idle.max.toFixed(1)} ms\n`);
const header = ['evalSamples', 'scoring s', 'in thread s', 'loop p99 ms', 'loop max ms', 'p99 / idle'];
const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
const line = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i])).join('  ');
console.log(line(header));
for (const row of rows) console.log(line(row));
