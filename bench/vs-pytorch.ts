/**
 * One training step (the trainer's lossAndGrads) of each model at its default
 * config, tfjs on the wasm backend with the project's kernels against the same
 * architecture in PyTorch (bench/pytorch/models.py), measured in the same run.
 *
 *   npx tsx bench/vs-pytorch.ts [--models dcgan,ddpm,vae] [--batch 64] [--threads 1,2] [--repeats 7] [--quick]
 *   npx tsx bench/vs-pytorch.ts --profile [--models dcgan]
 *   npx tsx bench/vs-pytorch.ts --check
 *
 * PyTorch is not a dependency of the project: without a Python that imports
 * torch (Debian: apt-get install python3-torch libopenblas0-pthread) the
 * comparison is skipped with a message and exit code 0. Without OpenBLAS,
 * Debian's torch multiplies with the reference BLAS, several times slower.
 *
 * The tfjs side runs the project's oneDNN convolutions when their addon is
 * built (native/build.sh); then wasm alone (TESSERA_NATIVE_KERNELS=0) is
 * measured too, in a child of its own stepped in the same turns, and shown in
 * columns of its own. TESSERA_NATIVE_KERNELS=0 measures wasm alone only.
 *
 * Each side runs in its own child process (tfjs backends are process-global;
 * PyTorch's threads are set before its first op), one child per model and
 * thread count, all started before the first timed step and then stepped in
 * turn: a tfjs step, a PyTorch step per thread count, and so on (the order
 * flipped every repeat), so both see the same load. Each figure is the median
 * of the repeats after warm-up. The PyTorch model must have the same tensors
 * (count and sizes) as the tfjs one; otherwise no ratio is printed.
 *
 * By default both children keep the memory they free (--malloc): otherwise
 * glibc hands PyTorch's big buffers back to the system and PyTorch pays for
 * fresh pages every step, which tfjs's wasm heap never does.
 *
 * tfjs-wasm runs one thread in Node (its threaded build is browser-only:
 * WASM_HAS_MULTITHREAD_SUPPORT is false under Node), so tfjs is measured at
 * the thread count its child reports and the other rows say n/a.
 *
 * --profile times the kernels of one tfjs step instead (tf.profile on wasm):
 * where the step's time goes, by kernel and by kernel and input shapes.
 * --check takes one step on both sides from the same weights, batch and noise
 * and compares the losses and gradient norms (bench/pytorch/equivalence.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dnnlUnavailable } from '../runtime/node/dnnl-kernels.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { getModel } from '../shared/models/registry.ts';
import { median } from '../shared/schedule/schedule.ts';
import { syntheticBatch } from '../shared/worker/model-speed.ts';
import { benchOptions } from './lib/options.ts';
import { StepChild, type ReadyInfo } from './lib/step-child.ts';
import { compareWithPytorch, TOLERANCE } from './pytorch/equivalence.ts';
import { printTable } from './lib/table.ts';

const USAGE = `Usage: npx tsx bench/vs-pytorch.ts [options]

One lossAndGrads step of each model at its default config: tfjs (wasm) against the same architecture in PyTorch,
stepped in turn in the same run. Skipped (exit 0) when no Python imports torch.

  --models LIST        models to measure, comma-separated (default dcgan,ddpm,vae; with --profile dcgan)
  --batch N            examples per step (default 64; quick 8)
  --threads LIST       PyTorch thread counts, comma-separated (default 1,2); tfjs-wasm runs one thread in Node
  --repeats N          timed steps per side after the warm-up (default 7; quick 1)
  --warmup N           untimed steps per side first (default 2; quick 1)
  --python PATH        the Python to run PyTorch with (default: python3, else /usr/bin/python3, the first that imports torch)
  --malloc MODE        kept (default): glibc keeps freed memory in both children, as wasm's heap does;
                       default: glibc's own thresholds (PyTorch then page-faults fresh buffers every step)
  --profile            time the kernels of one tfjs step of each model (tf.profile) instead of comparing
  --config JSON        overrides of the models' default configs, e.g. '{"generatorDepth":3}' with --models dcgan
  --check              compare one step's losses and gradient norms, same weights and inputs on both sides, instead
  --quick              a smoke run: batch 8, one warm-up step and one timed step
  --child MODEL        (internal) serve MODEL's tfjs steps on stdin/stdout
  --help               print this and exit
`;

const values = benchOptions(USAGE, {
  models: { type: 'string' },
  batch: { type: 'string' },
  threads: { type: 'string', default: '1,2' },
  repeats: { type: 'string' },
  warmup: { type: 'string' },
  python: { type: 'string' },
  malloc: { type: 'string', default: 'kept' },
  profile: { type: 'boolean', default: false },
  check: { type: 'boolean', default: false },
  config: { type: 'string' },
  child: { type: 'string' },
});
const QUICK = values.quick;
const BATCH = positive('batch', values.batch ?? (QUICK ? '8' : '64'));
const REPEATS = positive('repeats', values.repeats ?? (QUICK ? '1' : '7'));
const WARMUP = positive('warmup', values.warmup ?? (QUICK ? '1' : '2'), 0);
const THREADS = values.threads.split(',').map((threads) => positive('threads', threads));
if (values.malloc !== 'kept' && values.malloc !== 'default') throw new RangeError(`--malloc must be kept or default, got ${JSON.stringify(values.malloc)}`);
/**
 * glibc returns big freed buffers to the system (munmap, heap trimming), so a PyTorch step page-faults its
 * activations in afresh. On the development machine, a Firecracker microVM that reports free pages to its host,
 * that tripled dcgan's step (~100 ms against ~33) and made it erratic. tfjs's wasm heap only grows and is reused.
 * Raising both thresholds keeps freed memory in the process, as that heap does: the kernels are what is compared.
 */
const KEEP_FREED_MEMORY = { MALLOC_MMAP_THRESHOLD_: String(2 ** 30), MALLOC_TRIM_THRESHOLD_: String(2 ** 30) };
const MODELS = (values.models ?? (values.profile ? 'dcgan' : 'dcgan,ddpm,vae')).split(',').map((id) => id.trim());
/** Longest wait for a child to be ready (tfjs's import and the wasm start take seconds), and for one step. */
const START_TIMEOUT_MS = 3 * 60_000;
const STEP_TIMEOUT_MS = 5 * 60_000;
const PYTORCH_STEP = fileURLToPath(new URL('pytorch/step.py', import.meta.url));
/** Rows of the by-shape profile table: the costliest kernel calls. */
const PROFILE_TOP = 15;

function positive(name: string, text: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return value;
}

/** A model's config: its defaults with --config's overrides, checked by the model's own schema. */
function modelConfig(modelId: string) {
  const spec = getModel(modelId, '--models');
  return { spec, config: spec.parseConfig({ ...spec.defaults, ...(values.config ? JSON.parse(values.config) : {}) }) };
}

/** A model's trainer at its defaults, on wasm with the project's kernels (and oneDNN's convolutions where built), and a batch of seeded pixels. */
async function setUp(modelId: string, batchSize: number) {
  const choice = await selectNodeBackend('wasm');
  const { spec, config } = modelConfig(modelId);
  const trainer = spec.createTrainer(config);
  return { choice, spec, config, trainer, batch: syntheticBatch(spec, batchSize, 42) };
}

/** Threads of the wasm module (1 unless tfjs loaded its threaded build). */
function wasmThreads(): number {
  const backend = tf.backend() as { wasm?: { tfjs?: { getThreadsCount?: () => number } } };
  return backend.wasm?.tfjs?.getThreadsCount?.() ?? 1;
}

const elements = (shape: number[]) => shape.reduce((product, size) => product * size, 1);

/** In the tfjs child: READY with the model's tensors, then one timed lossAndGrads per `step` line. */
async function serveTfjs(modelId: string): Promise<void> {
  const { choice, trainer, batch } = await setUp(modelId, BATCH);
  const sizes = Object.values(trainer.shapes).map(elements);
  const ready = {
    parameters: sizes.reduce((sum, size) => sum + size, 0),
    tensorSizes: sizes.sort((a, b) => a - b),
    tfjs: tf.version.tfjs,
    backend: dnnlUnavailable() === undefined ? `${choice.name}, convolutions in oneDNN` : `${choice.name} (oneDNN convolutions: ${dnnlUnavailable()})`,
    threads: wasmThreads(),
  };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
  let step = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() !== 'step') {
      process.stdout.write(`ERROR unknown command ${JSON.stringify(line)}\n`);
      continue;
    }
    const noise = trainer.drawNoise(BATCH, step++);
    const started = performance.now();
    await trainer.lossAndGrads(batch, noise);
    process.stdout.write(`STEP ${performance.now() - started}\n`);
  }
  trainer.dispose();
}

/** The first Python that imports torch, or undefined. */
function findPython(asked?: string): string | undefined {
  const candidates = asked ? [asked] : ['python3', '/usr/bin/python3'];
  return candidates.find((python) => spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
}

interface Timings {
  median: number;
  min: number;
  max: number;
}

interface Comparison {
  model: string;
  tfjs?: { ready: ReadyInfo; timings: Timings };
  /** tfjs without the oneDNN convolutions (TESSERA_NATIVE_KERNELS=0), measured alongside when they are in use. */
  wasmAlone?: Timings;
  pytorch: { threads: number; ready: ReadyInfo; timings: Timings }[];
  error?: string;
}

function summarize(samples: number[]): Timings {
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples) };
}

/** Starts a model's tfjs child and one PyTorch child per thread count, then steps them in turn. */
async function compare(modelId: string, python: string): Promise<Comparison> {
  const { config } = modelConfig(modelId);
  const children: StepChild[] = [];
  // The same malloc for both sides: Node's array buffers (the gradients read back) come from glibc too.
  const malloc = values.malloc === 'kept' ? KEEP_FREED_MEMORY : {};
  try {
    const tfjsArgs = [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--child',
      modelId,
      '--batch',
      String(BATCH),
      ...(values.config ? ['--config', values.config] : []),
    ];
    const tfjs = await StepChild.start(`tfjs ${modelId}`, process.execPath, tfjsArgs, START_TIMEOUT_MS, { ...process.env, ...malloc });
    children.push(tfjs.child);
    // With the oneDNN convolutions in use, wasm alone is stepped in the same turns, so the two see the same load.
    const withAlone = dnnlUnavailable() === undefined;
    if (withAlone) {
      const env = { ...process.env, ...malloc, TESSERA_NATIVE_KERNELS: '0' };
      children.push((await StepChild.start(`tfjs ${modelId} without oneDNN`, process.execPath, tfjsArgs, START_TIMEOUT_MS, env)).child);
    }
    const firstPytorch = children.length;
    const pytorch = [];
    for (const threads of THREADS) {
      // Debian's torch does not size OpenBLAS's own thread pool: the environment does, before it starts (and no .pyc in bench/).
      const env = {
        ...process.env,
        ...malloc,
        OMP_NUM_THREADS: String(threads),
        OPENBLAS_NUM_THREADS: String(threads),
        PYTHONDONTWRITEBYTECODE: '1',
      };
      const args = [PYTORCH_STEP, '--model', modelId, '--config', JSON.stringify(config), '--batch', String(BATCH), '--threads', String(threads)];
      const started = await StepChild.start(`PyTorch ${modelId} ${threads} threads`, python, args, START_TIMEOUT_MS, env);
      children.push(started.child);
      pytorch.push({ threads, ready: started.ready });
    }
    const samples: number[][] = children.map(() => []);
    for (let round = 0; round < WARMUP + REPEATS; round++) {
      const order = children.map((_, index) => index);
      if (round % 2 === 1) order.reverse();
      for (const index of order) {
        const ms = await children[index].step(STEP_TIMEOUT_MS);
        if (round >= WARMUP) samples[index].push(ms);
      }
    }
    return {
      model: modelId,
      tfjs: { ready: tfjs.ready, timings: summarize(samples[0]) },
      wasmAlone: withAlone ? summarize(samples[1]) : undefined,
      pytorch: pytorch.map((side, index) => ({ ...side, timings: summarize(samples[index + firstPytorch]) })),
    };
  } catch (error) {
    return { model: modelId, pytorch: [], error: (error as Error).message };
  } finally {
    for (const child of children) child.stop();
  }
}

/** Why the two models are not comparable, or undefined when their tensors match in number and size. */
function mismatch(tfjs: ReadyInfo, pytorch: ReadyInfo): string | undefined {
  if (tfjs.parameters !== pytorch.parameters) return `parameters differ: tfjs ${String(tfjs.parameters)}, PyTorch ${String(pytorch.parameters)}`;
  if (JSON.stringify(tfjs.tensorSizes) !== JSON.stringify(pytorch.tensorSizes)) return 'tensor sizes differ';
  return undefined;
}

const ms = (timings: Timings) => `${timings.median.toFixed(0)} (${timings.min.toFixed(0)}-${timings.max.toFixed(0)})`;

function printComparison(comparisons: Comparison[]): void {
  const rows: string[][] = [];
  const withAlone = comparisons.some((comparison) => comparison.wasmAlone);
  for (const { model, tfjs, wasmAlone, pytorch, error } of comparisons) {
    if (error || !tfjs) {
      rows.push([model, '-', '-', '-', '-', '-', ...(withAlone ? ['-', '-'] : []), `not measured: ${error}`]);
      continue;
    }
    for (const side of pytorch) {
      const notSame = mismatch(tfjs.ready, side.ready);
      const tfjsHere = tfjs.ready.threads === side.threads ? tfjs.timings : undefined;
      const ratio = (of: keyof Timings) => (notSame ? 'refused' : tfjsHere ? `${(tfjsHere[of] / side.timings[of]).toFixed(2)}x` : 'n/a');
      const alone = wasmAlone && tfjsHere ? [ms(wasmAlone), notSame ? 'refused' : `${(wasmAlone.median / side.timings.median).toFixed(2)}x`] : ['n/a', 'n/a'];
      const row = [model, String(side.threads), tfjsHere ? ms(tfjsHere) : 'n/a', ms(side.timings), ratio('median'), ratio('min')];
      rows.push([...row, ...(withAlone ? alone : []), notSame ?? '']);
    }
  }
  console.log(`\nlossAndGrads at each model's defaults, batch ${BATCH}: median (min-max) of ${REPEATS} steps after ${WARMUP} warm-up, in ms`);
  // Other processes only ever add time: on a busy machine the minimums' ratio is the steadier figure.
  console.log('tfjs/PyTorch is the ratio of the medians; "of minimums" the ratio of the fastest steps');
  if (withAlone) console.log('"wasm alone" is tfjs without the oneDNN convolutions (TESSERA_NATIVE_KERNELS=0), stepped in the same turns');
  const aloneColumns = withAlone ? ['wasm alone ms', 'wasm alone/PyTorch'] : [];
  printTable(['model', 'threads', 'tfjs ms', 'PyTorch ms', 'tfjs/PyTorch', 'of minimums', ...aloneColumns, 'note'], rows);
  for (const { model, tfjs, pytorch } of comparisons) {
    if (!tfjs || pytorch.length === 0) continue;
    const count = (info: ReadyInfo) => `${Number(info.parameters).toLocaleString('en')} in ${(info.tensorSizes as number[]).length} tensors`;
    console.log(`${model}: tfjs ${count(tfjs.ready)}; PyTorch ${count(pytorch[0].ready)}; ${mismatch(tfjs.ready, pytorch[0].ready) ?? 'the same'}`);
  }
  const first = comparisons.find((comparison) => comparison.tfjs && comparison.pytorch.length > 0);
  if (first) {
    const { tfjs, pytorch } = first;
    console.log(`tfjs ${String(tfjs!.ready.tfjs)} on ${String(tfjs!.ready.backend)}, ${String(tfjs!.ready.threads)} thread(s) in Node`);
    console.log(`PyTorch ${String(pytorch[0].ready.torch)}, BLAS ${String(pytorch[0].ready.blas)}`);
    const malloc = values.malloc === 'kept' ? 'freed memory kept (MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ 1 GiB)' : "glibc's defaults";
    console.log(`malloc, both sides: ${malloc}`);
  }
}

/** In this process: one tfjs step of a model under tf.profile, its kernels' time by name and by name and shapes. */
async function profile(modelId: string): Promise<void> {
  const { trainer, batch } = await setUp(modelId, BATCH);
  let seed = 0;
  const step = async () => {
    const noise = trainer.drawNoise(BATCH, seed++);
    const started = performance.now();
    await trainer.lossAndGrads(batch, noise);
    return performance.now() - started;
  };
  for (let i = 0; i < WARMUP; i++) await step();
  const unprofiled = [];
  for (let i = 0; i < REPEATS; i++) unprofiled.push(await step());
  let profiledMs = 0;
  const info = await tf.profile(async () => {
    profiledMs = await step();
  });
  trainer.dispose();
  // Op scopes (customGrad's "unnamed scope", fusedMatMul__op) are listed beside the kernels they run: count kernels only.
  const kernels = info.kernels
    .filter((kernel) => tf.getKernel(kernel.name, tf.getBackend()) !== undefined)
    .map((kernel) => ({
      name: kernel.name,
      shapes: kernel.inputShapes.map((shape) => (shape ? `[${shape.join(',')}]` : '-')).join(' '),
      ms: typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0,
    }));
  const kernelMs = kernels.reduce((sum, kernel) => sum + kernel.ms, 0);
  const grouped = (key: (kernel: (typeof kernels)[number]) => string) => {
    const groups = new Map<string, { ms: number; calls: number }>();
    for (const kernel of kernels) {
      const group = groups.get(key(kernel)) ?? { ms: 0, calls: 0 };
      group.ms += kernel.ms;
      group.calls += 1;
      groups.set(key(kernel), group);
    }
    return [...groups].sort((a, b) => b[1].ms - a[1].ms);
  };
  const share = (value: number) => `${((100 * value) / kernelMs).toFixed(1)}%`;
  console.log(`\n${modelId} at its defaults, batch ${BATCH}, tfjs ${tf.version.tfjs} on ${tf.getBackend()} (${wasmThreads()} thread):`);
  console.log(`  step ${median(unprofiled).toFixed(0)} ms (median of ${REPEATS}), ${profiledMs.toFixed(0)} ms profiled`);
  console.log(`  kernels ${kernelMs.toFixed(0)} ms in ${kernels.length} calls; the rest is JS around them (engine, tape, gradient functions, reads)`);
  printTable(
    ['kernel', 'calls', 'total ms', 'ms/call', 'share'],
    grouped((kernel) => kernel.name).map(([name, { ms, calls }]) => [name, String(calls), ms.toFixed(1), (ms / calls).toFixed(2), share(ms)]),
  );
  console.log(`\nThe ${PROFILE_TOP} costliest kernels by input shapes:`);
  printTable(
    ['kernel', 'input shapes', 'calls', 'total ms', 'share'],
    grouped((kernel) => `${kernel.name}\t${kernel.shapes}`)
      .slice(0, PROFILE_TOP)
      .map(([key, { ms, calls }]) => [...key.split('\t'), String(calls), ms.toFixed(1), share(ms)]),
  );
}

/** In this process: one step of each model on both sides from the same weights and inputs; false if any disagree. */
async function checkEquivalence(python: string): Promise<boolean> {
  const rows: string[][] = [];
  let agreed = true;
  for (const modelId of MODELS) {
    const { config, trainer, batch } = await setUp(modelId, BATCH);
    try {
      // A diffusion trainer's schedule: PyTorch takes its ᾱ as they are.
      const alphaBars = (trainer as { schedule?: { alphaBars: ArrayLike<number> } }).schedule?.alphaBars;
      for (const agreement of await compareWithPytorch(python, { id: modelId, config }, trainer, batch, 7, alphaBars)) {
        const same = agreement.relativeDifference <= TOLERANCE;
        agreed &&= same;
        const cells = [agreement.tfjs, agreement.pytorch, agreement.relativeDifference].map((value) => value.toPrecision(4));
        rows.push([modelId, agreement.quantity, ...cells, same ? 'same' : 'DIFFERENT']);
      }
    } catch (error) {
      agreed = false;
      rows.push([modelId, '-', '-', '-', '-', `not checked: ${(error as Error).message}`]);
    } finally {
      trainer.dispose();
    }
  }
  console.log(`\nOne step from the same weights, batch ${BATCH} and noise (same: relative difference <= ${TOLERANCE}):`);
  printTable(['model', 'quantity', 'tfjs', 'PyTorch', 'rel. diff', ''], rows);
  return agreed;
}

function machine(): string {
  const cores = cpus();
  return `${cores[0]?.model.trim() ?? 'unknown CPU'}, ${cores.length} logical cores (${availableParallelism()} available), load average ${loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')}`;
}

if (values.child) {
  await serveTfjs(values.child);
} else if (values.profile) {
  console.log(`Machine: ${machine()}`);
  for (const model of MODELS) await profile(model);
} else {
  for (const model of MODELS) getModel(model, '--models');
  const python = findPython(values.python);
  if (!python) {
    console.log(
      `vs-pytorch: skipped, no PyTorch: ${values.python ?? 'python3 (nor /usr/bin/python3)'} cannot import torch. ` +
        'It is not a dependency of the project; on Debian: apt-get install python3-torch libopenblas0-pthread',
    );
    process.exit(0);
  }
  console.log(`Machine: ${machine()}`);
  if (values.check) {
    if (!(await checkEquivalence(python))) process.exitCode = 1;
    process.exit();
  }
  const comparisons: Comparison[] = [];
  for (const model of MODELS) {
    process.stderr.write(`measuring ${model}...\n`);
    comparisons.push(await compare(model, python));
  }
  printComparison(comparisons);
  console.log(`Load average at the end: ${loadavg()[0].toFixed(2)}`);
  if (comparisons.some((comparison) => comparison.error)) process.exitCode = 1;
}
