import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Batch, Trainer } from '../../shared/models/types.ts';
import { gaussian } from '../../shared/training/random.ts';

/*
 * Whether bench/pytorch/models.py computes what the tfjs trainer computes:
 * one tfjs lossAndGrads, then the same step in PyTorch from the same weights,
 * batch and noise (check.py), compared loss by loss and by each gradient's
 * L2 norm (a norm does not depend on the layout the two libraries keep a
 * tensor in).
 */

/** shared/models/layers/spectral-norm.ts's START_SEED (not exported there): the power iteration's fixed start. */
const SPECTRAL_START_SEED = 0x5eed;
/** Float32 sums in different orders: agreement to this relative difference is the same computation. */
export const TOLERANCE = 1e-3;
const CHECK_SCRIPT = fileURLToPath(new URL('check.py', import.meta.url));

export interface Agreement {
  quantity: string;
  tfjs: number;
  pytorch: number;
  relativeDifference: number;
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-12);
const norm = (values: Float32Array) => Math.sqrt(values.reduce((sum, value) => sum + value * value, 0));

/**
 * Each loss's agreement, and the worst gradient norm's (with how many tensors were compared). `trainer` takes
 * weights drawn from `seed`; `alphaBars` is a diffusion model's schedule (PyTorch's rebuild omits the last β's clip).
 */
export async function compareWithPytorch(
  python: string,
  model: { id: string; config: object },
  trainer: Trainer,
  batch: Batch,
  seed: number,
  alphaBars?: ArrayLike<number>,
): Promise<Agreement[]> {
  const weights = trainer.initialWeights(seed);
  trainer.setWeights(weights);
  const noise = trainer.drawNoise(batch.count, seed);
  const result = await trainer.lossAndGrads(batch, noise);
  const units = new Set(Object.values(trainer.shapes).map((shape) => shape[shape.length - 1]));
  const step = {
    model: model.id,
    config: model.config,
    batch: batch.count,
    shapes: trainer.shapes,
    weights: Object.fromEntries(Object.entries(weights).map(([name, values]) => [name, Array.from(values)])),
    images: Array.from(batch.images),
    noise: Object.fromEntries(Object.entries(noise).map(([name, values]) => [name, Array.from(values)])),
    spectralStart: Object.fromEntries([...units].map((size) => [size, Array.from(gaussian(size, SPECTRAL_START_SEED))])),
    ...(alphaBars ? { alphaBars: Array.from(alphaBars) } : {}),
  };
  const dir = mkdtempSync(join(tmpdir(), 'vs-pytorch-check-'));
  try {
    const file = join(dir, 'step.json');
    writeFileSync(file, JSON.stringify(step));
    const run = spawnSync(python, [CHECK_SCRIPT, file], { encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    const line = run.stdout.match(/^RESULT (.*)$/m);
    if (!line) throw new Error(`check.py ${run.signal ?? `exited with ${run.status}`}: ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    const pytorch = JSON.parse(line[1]) as { losses: Record<string, number>; gradNorms: Record<string, number> };
    const agreements = Object.entries(result.losses).map(([name, value]) => {
      const other = pytorch.losses[name] ?? NaN;
      return { quantity: `loss ${name}`, tfjs: value, pytorch: other, relativeDifference: relative(value, other) };
    });
    const grads = Object.entries(result.grads).map(([name, values]) => {
      const [tfjs, other] = [norm(values), pytorch.gradNorms[name] ?? NaN];
      return { quantity: `|grad| ${name}`, tfjs, pytorch: other, relativeDifference: relative(tfjs, other) };
    });
    // NaN counts as the worst: a missing or non-finite norm is a disagreement.
    const badness = (agreement: Agreement) => (Number.isNaN(agreement.relativeDifference) ? Infinity : agreement.relativeDifference);
    const worst = grads.reduce((a, b) => (badness(b) > badness(a) ? b : a));
    return [...agreements, { ...worst, quantity: `${worst.quantity} (worst of ${grads.length})` }];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
