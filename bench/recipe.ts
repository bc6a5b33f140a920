/**
 * Recipe trials for a GAN family: variants of the model's defaults (learning
 * rates, Adam's betas, batch, width, normalization), each trained for the same
 * CPU time and scored by the project's evaluator, with ratios against the
 * defaults measured in the same run.
 *
 *   npx tsx bench/recipe.ts [--cpu-seconds 480] [--trials base,ttur,...] [--parallel 2] [--quick]
 *
 * Each trial runs in its own process (one core: tfjs-wasm is single-threaded
 * here), `--parallel` at once; budgets are CPU seconds of that process, so a
 * busy machine slows a trial down but does not change what it reaches. Trials
 * run the real Job with one simulated worker (bench/lib/simulated-training.ts);
 * each is scored on its raw weights and on its EMA when the model keeps one.
 *
 * Equal CPU time is the comparison that matters for the `npm start` job: it
 * runs for wall time on fixed cores, so a variant that learns more per step
 * but steps slower must win per second, not per step.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { loadEvaluator } from '../coordinator/quality/load.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import { loadMnist } from '../shared/data/mnist.ts';
import type { QualityReport } from '../shared/eval/report.ts';
import { getModel } from '../shared/models/registry.ts';
import type { OptimizerConfig } from '../shared/models/types.ts';
import { registerWasmConvKernels } from '../shared/tfjs/wasm-conv-kernels.ts';
import { benchOptions } from './lib/options.ts';
import { simulateTraining } from './lib/simulated-training.ts';

const USAGE = `Usage: npx tsx bench/recipe.ts [options]

Variants of a GAN's default recipe at equal CPU time, scored by the evaluator; ratios against the defaults.

  --model ID           model family (default dcgan)
  --cpu-seconds N      CPU seconds of training per trial (default 480; quick 20)
  --trials NAMES       trials to run, comma-separated (default all; 'base' is always run first)
  --parallel N         trials at once, one process each (default 2)
  --score N            samples generated and scored per set of weights (default 1000; quick 128)
  --seed N             initial weights' seed (default 1)
  --truncations LIST   also score samples with latents truncated at these bounds, comma-separated (e.g. 1,0.7)
  --quick              a smoke run: width 8, 20 CPU seconds, two trials
  --help               print this and exit
`;
const values = benchOptions(USAGE, {
  model: { type: 'string', default: 'dcgan' },
  'cpu-seconds': { type: 'string' },
  trials: { type: 'string' },
  parallel: { type: 'string', default: '2' },
  score: { type: 'string' },
  seed: { type: 'string', default: '1' },
  truncations: { type: 'string', default: '' },
  trial: { type: 'string' },
});

interface Trial {
  description: string;
  modelConfig?: Record<string, unknown>;
  optimizers?: Record<string, Partial<OptimizerConfig>>;
  batch?: number;
  /** Overrides of the job's training config. */
  training?: Record<string, unknown>;
}

/** The variants: each changes one thing of the defaults (base). */
const TRIALS: Record<string, Trial> = {
  base: { description: 'the model defaults' },
  'lr-2e-3': { description: 'both learning rates 2e-3', optimizers: { generator: { learningRate: 2e-3 }, discriminator: { learningRate: 2e-3 } } },
  ttur: { description: 'D at twice G’s rate (2e-3, G 1e-3)', optimizers: { discriminator: { learningRate: 2e-3 } } },
  'g-slow': { description: 'G at half D’s rate (5e-4, D 1e-3)', optimizers: { generator: { learningRate: 5e-4 } } },
  'beta-0': { description: 'Adam β1 0, β2 0.99 for both', optimizers: { generator: { beta1: 0, beta2: 0.99 }, discriminator: { beta1: 0, beta2: 0.99 } } },
  'batch-128': { description: 'global batch 128 (one step per 128 samples)', batch: 128 },
  'width-48': { description: 'width 48', modelConfig: { width: 48 } },
  'lr-half-3000': { description: 'learning rates halve every 3,000 steps', training: { lrHalfLife: 3000 } },
  'd-depth-3': { description: 'a third conv in D (3x3, stride 1, at 7x7)', modelConfig: { discriminatorDepth: 3 } },
  'g-depth-3': { description: 'a third conv in G (3x3, stride 1, at 14x14, normalized)', modelConfig: { generatorDepth: 3 } },
  'g-depth-4': { description: 'two more convs in G (3x3, stride 1, at 14x14, normalized)', modelConfig: { generatorDepth: 4 } },
  'g-depth-6': { description: 'four more convs in G (3x3, stride 1, at 14x14, normalized)', modelConfig: { generatorDepth: 6 } },
  'd-depth-4': { description: 'a fourth conv in D (3x3, stride 1, at 7x7)', modelConfig: { discriminatorDepth: 4 } },
  'd-width-48': { description: 'D at width 48 (G at 32)', modelConfig: { discriminatorWidth: 48 } },
  'pixel-norm': { description: 'pixel norm in G instead of layer norm', modelConfig: { generatorNorm: 'pixel' } },
};
const SCORE_SEED = 7;
const quick = values.quick;
const cpuSeconds = Number(values['cpu-seconds'] ?? (quick ? 20 : 480));
const scored = Number(values.score ?? (quick ? 128 : 1000));

interface TrialResult {
  name: string;
  steps: number;
  samples: number;
  cpuSeconds: number;
  /** Reports by the weights scored: 'raw', and 'ema' when the model keeps one. */
  reports: Record<string, QualityReport>;
}

if (values.trial) await runTrial(values.trial);
else await runAll();

/** In a child process: trains one trial to its CPU budget, scores it, prints its result as JSON on the last line. */
async function runTrial(name: string): Promise<void> {
  const trial = TRIALS[name];
  if (!trial) throw new Error(`--trial: unknown ${name}`);
  registerWasmConvKernels();
  await tf.setBackend('wasm');
  const spec = getModel(values.model);
  const modelConfig = { ...(quick ? { width: 8, latentDim: 16 } : {}), ...trial.modelConfig };
  const trainer = spec.createTrainer(spec.parseConfig(modelConfig));
  const dataset = loadMnist();
  const batch = trial.batch ?? (quick ? 16 : 64);
  const cpu = () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  };
  const start = cpu();
  const result = await simulateTraining({
    spec,
    trainer,
    dataset,
    initial: trainer.initialWeights(Number(values.seed)),
    workers: 1,
    batchPerWorker: batch,
    samples: Number.MAX_SAFE_INTEGER,
    training: { referenceBatch: batch, ...trial.training },
    modelConfig,
    optimizers: trial.optimizers,
    stop: () => cpu() - start >= cpuSeconds,
  });
  const spent = cpu() - start;
  const evaluator = await loadEvaluator(dataset.id);
  const reports: Record<string, QualityReport> = {};
  const weightSets: [string, NamedArrays][] = [
    ['raw', result.job.state.weights],
    ...(result.job.state.ema ? [['ema', result.job.state.ema] as [string, NamedArrays]] : []),
  ];
  const bounds = values.truncations ? values.truncations.split(',').map(Number) : [];
  for (const [label, weights] of weightSets) {
    trainer.setWeights(weights);
    reports[label] = await evaluator.scoreTrainer(trainer, spec, scored, SCORE_SEED);
    for (const bound of bounds) {
      // Sampling alone changes: the same weights in a trainer whose config truncates the latents.
      const truncated = spec.createTrainer(spec.parseConfig({ ...modelConfig, truncation: bound }));
      truncated.setWeights(weights);
      reports[`${label}@${bound}`] = await evaluator.scoreTrainer(truncated, spec, scored, SCORE_SEED);
      truncated.dispose();
    }
  }
  evaluator.dispose();
  trainer.dispose();
  const outcome: TrialResult = { name, steps: result.job.state.version, samples: result.job.state.samplesSeen, cpuSeconds: spent, reports };
  console.log(JSON.stringify(outcome));
}

/** Runs a trial in its own process and returns what it printed last. */
function spawnTrial(name: string): Promise<TrialResult> {
  const args = [
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    '--trial',
    name,
    '--model',
    values.model,
    '--cpu-seconds',
    String(cpuSeconds),
    '--score',
    String(scored),
    '--seed',
    values.seed,
    '--truncations',
    values.truncations,
    ...(quick ? ['--quick'] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`trial ${name} ended with code ${code}: ${out.slice(-500)}`));
      else resolve(JSON.parse(last) as TrialResult);
    });
  });
}

async function runAll(): Promise<void> {
  const names = values.trials ? ['base', ...values.trials.split(',').filter((name) => name !== 'base')] : quick ? ['base', 'lr-2e-3'] : Object.keys(TRIALS);
  for (const name of names) if (!TRIALS[name]) throw new Error(`--trials: unknown ${name}; known: ${Object.keys(TRIALS).join(', ')}`);
  const parallel = Math.max(1, Number(values.parallel));
  const results = new Map<string, TrialResult>();
  const queue = [...names];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(parallel, names.length) }, async () => {
      for (let name = queue.shift(); name; name = queue.shift()) {
        const result = await spawnTrial(name);
        const best = Object.entries(result.reports).sort((a, b) => a[1].frechet - b[1].frechet)[0];
        process.stderr.write(
          `${name}: ${result.steps} steps in ${result.cpuSeconds.toFixed(0)} CPU s; best ${best[0]} Fréchet ${best[1].frechet.toFixed(1)}, ${(best[1].recognisable * 100).toFixed(1)}% recognisable\n`,
        );
        results.set(name, result);
      }
    }),
  );
  const base = results.get('base')!;
  const baseReport = base.reports.ema ?? base.reports.raw;
  const fixed = (value: number, digits = 2) => value.toFixed(digits);
  console.log(
    `\n${values.model}: ${cpuSeconds} CPU s per trial, ${scored} samples scored per set of weights (latents seeded ${SCORE_SEED}); ${((performance.now() - started) / 60_000).toFixed(1)} min in all`,
  );
  console.log(`Baseline: base with the model's own sampling weights (${base.reports.ema ? 'its EMA' : 'raw'}).\n`);
  console.log('| trial | what | weights | steps | samples | Fréchet | vs base | recognisable | precision | recall |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const name of names) {
    const result = results.get(name)!;
    for (const [label, report] of Object.entries(result.reports)) {
      console.log(
        `| ${name} | ${TRIALS[name].description} | ${label} | ${result.steps} | ${result.samples} | ${fixed(report.frechet, 1)} | ${fixed(report.frechet / baseReport.frechet)} | ${fixed(report.recognisable * 100, 1)}% | ${fixed(report.precision)} | ${fixed(report.recall)} |`,
      );
    }
  }
}
