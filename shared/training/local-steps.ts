import type { NamedArrays } from '../codec/types.ts';
import type { Batch, ModelSpec, OptimizerConfig, Trainer } from '../models/types.ts';
import { adamStep, createAdamState, type AdamState } from './adam.ts';
import type { LocalStepNoise } from './noise.ts';

/** A worker's inner optimizer state per network, kept across rounds (DiLoCo keeps it local). */
export type InnerState = Record<string, AdamState>;

/** Splits a batch into `steps` consecutive parts of near-equal size (none empty). */
export function splitBatch(batch: Batch, steps: number): Batch[] {
  const parts = Math.max(1, Math.min(steps, batch.count));
  const imageSize = batch.images.length / Math.max(batch.count, 1);
  const result: Batch[] = [];
  for (let part = 0; part < parts; part++) {
    const start = Math.floor((part * batch.count) / parts);
    const end = Math.floor(((part + 1) * batch.count) / parts);
    result.push({ count: end - start, images: batch.images.subarray(start * imageSize, end * imageSize), labels: batch.labels.subarray(start, end) });
  }
  return result;
}

/**
 * Local-update mode's work on a worker: `steps` optimizer steps on parts of
 * its batch from `start` weights, each network with its own inner Adam, and
 * the pseudo-gradient to send: start minus end (what an outer SGD step with
 * learning rate 1 would undo).
 */
export async function runLocalSteps(
  trainer: Trainer,
  spec: ModelSpec<any>,
  start: NamedArrays,
  batch: Batch,
  steps: number,
  noise: LocalStepNoise,
  optimizers: Record<string, OptimizerConfig>,
  inner: InnerState,
): Promise<{ delta: NamedArrays; losses: Record<string, number> }> {
  const weights = structuredClone(start);
  for (const network of Object.keys(optimizers)) {
    inner[network] ??= createAdamState(
      weights,
      Object.keys(weights).filter((name) => spec.networkOf(name) === network),
    );
  }
  const sums: Record<string, number> = {};
  const parts = splitBatch(batch, steps);
  let first = 0;
  for (const [step, part] of parts.entries()) {
    trainer.setWeights(weights);
    const { grads, losses } = await trainer.lossAndGrads(part, noise(step, first, part.count));
    first += part.count;
    for (const [network, state] of Object.entries(inner)) adamStep(weights, grads, state, optimizers[network]);
    for (const [name, value] of Object.entries(losses)) sums[name] = (sums[name] ?? 0) + value * part.count;
  }
  const delta: NamedArrays = {};
  for (const name of Object.keys(start)) delta[name] = start[name].map((value, i) => value - weights[name][i]);
  return { delta, losses: Object.fromEntries(Object.entries(sums).map(([name, sum]) => [name, sum / batch.count])) };
}
