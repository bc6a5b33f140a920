import { weightedMean } from '../aggregate/weighted-mean.ts';
import type { NamedArrays } from '../codec/types.ts';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { concatNoise } from '../training/noise.ts';
import { syntheticBatch } from '../worker/model-speed.ts';
import { dataShapeError, defaultDataShape, pixelsOf } from './data-shape.ts';
import type { Batch, DataShape, ModelSpec, Trainer } from './types.ts';

/** One clause of the model contract, as checked on a family before a job may use it. */
export interface AdmissionCheck {
  name: string;
  passed: boolean;
  detail: string;
}

/**
 * Largest relative error of any tensor between the workers' sample-weighted
 * mean gradient and the union batch's. The contract tests hold every built-in
 * family to 1e-5 after warm-up steps; at initialization, on random images,
 * float32 cancellation alone reaches ~1e-4 in a GAN's D. A statistic across
 * the batch (batch norm in training mode) is off by 1e-1 to 1: a tolerance
 * of 1e-2 separates the two with room on both sides.
 */
export const ADMISSION_TOLERANCE = 1e-2;
/** The shards of the equivalence check: unequal, so weighting by samples matters. */
const SHARDS = [3, 5, 8];

/** ||a - b|| / ||b||, in float64. */
export function relativeError(a: Float32Array, b: Float32Array): number {
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    difference += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(difference) / Math.max(Math.sqrt(norm), 1e-30);
}

/** The batches one after another, as one batch. */
export function concatBatches(batches: readonly Batch[]): Batch {
  const images = new Float32Array(batches.reduce((sum, batch) => sum + batch.images.length, 0));
  const labels = new Int32Array(batches.reduce((sum, batch) => sum + batch.count, 0));
  let pixel = 0;
  let row = 0;
  for (const batch of batches) {
    images.set(batch.images, pixel);
    labels.set(batch.labels, row);
    pixel += batch.images.length;
    row += batch.count;
  }
  return { images, labels, count: row };
}

const allFinite = (arrays: NamedArrays) => Object.values(arrays).every((values) => values.every(Number.isFinite));

/**
 * Runs the model contract's clauses that make data parallelism correct on a
 * family and a config, on synthetic data: the spec's networks cover every
 * tensor, gradients and losses come back for every tensor and only under the
 * declared loss names, finite, and — the central one — three workers' sample-
 * weighted mean gradient on unequal shards equals one process's gradient on
 * the union batch with the same per-example noise. Then `sample` makes images
 * of the data's shape. All on data of the shape in use (default: the
 * family's own). Each clause is reported, passed or not.
 */
export async function checkModel(spec: ModelSpec<any>, config: object, data: DataShape = defaultDataShape(spec)): Promise<AdmissionCheck[]> {
  const checks: AdmissionCheck[] = [];
  const check = (name: string, passed: boolean, detail: string) => checks.push({ name, passed, detail });
  const shapeError = dataShapeError(spec, data);
  if (shapeError !== undefined) {
    check('data shape', false, shapeError);
    return checks;
  }
  let trainer: Trainer | undefined;
  try {
    trainer = spec.createTrainer(config, data);
    const names = Object.keys(trainer.shapes);
    const networks = new Set(Object.keys(spec.networks));
    const orphans = names.filter((name) => !networks.has(spec.networkOf(name)));
    check(
      'networks',
      names.length > 0 && orphans.length === 0,
      orphans.length ? `tensors in no declared network: ${orphans.slice(0, 5).join(', ')}` : `${names.length} tensors in ${networks.size} networks`,
    );
    trainer.setWeights(trainer.initialWeights(7));

    const batches = SHARDS.map((count, shard) => syntheticBatch(data, count, 100 + shard));
    const noises = SHARDS.map((count, shard) => trainer!.drawNoise(count, 200 + shard));
    const perWorker = [];
    for (const [shard, batch] of batches.entries()) perWorker.push(await trainer.lossAndGrads(batch, noises[shard]));
    const union = await trainer.lossAndGrads(concatBatches(batches), concatNoise(noises));

    const missing = names.filter((name) => !union.grads[name]);
    check(
      'gradients',
      missing.length === 0 && allFinite(union.grads),
      missing.length
        ? `no gradient for ${missing.slice(0, 5).join(', ')}`
        : allFinite(union.grads)
          ? 'one finite gradient per tensor'
          : 'a gradient is not finite',
    );
    const unknown = Object.keys(union.losses).filter((name) => !spec.lossNames.includes(name));
    const lossesFinite = Object.values(union.losses).every(Number.isFinite);
    check(
      'losses',
      unknown.length === 0 && lossesFinite,
      unknown.length
        ? `losses not in lossNames: ${unknown.join(', ')}`
        : lossesFinite
          ? `losses ${Object.keys(union.losses).join(', ')}`
          : 'a loss is not finite',
    );

    if (missing.length === 0) {
      const averaged = weightedMean(perWorker.map((result, shard) => ({ weight: batches[shard].count, tensors: result.grads })));
      let worst = { name: '', error: 0 };
      for (const name of names) {
        const error = relativeError(averaged[name], union.grads[name]);
        if (!(error <= worst.error)) worst = { name, error };
      }
      check(
        'data parallelism',
        worst.error <= ADMISSION_TOLERANCE,
        `the sample-weighted mean of 3 workers' gradients (${SHARDS.join(', ')} examples) against the union batch's: ` +
          `largest relative error ${worst.error.toExponential(1)} (${worst.name}), tolerance ${ADMISSION_TOLERANCE}` +
          (worst.error <= ADMISSION_TOLERANCE ? '' : ": an example's loss depends on the rest of its batch (batch norm in training mode does this)"),
      );
    }

    const sampled = await trainer.sample(2, 1);
    const pixels = pixelsOf(data);
    check('samples', sampled.images.length === 2 * pixels && sampled.labels.length === 2, `sample(2) gave ${sampled.images.length} values for ${2 * pixels}`);
  } catch (error) {
    check('runs', false, error instanceof Error ? error.message : String(error));
  } finally {
    trainer?.dispose();
  }
  return checks;
}

/** checkModel, refusing the family with a typed error naming the first failed check. */
export async function admitModel(
  spec: ModelSpec<any>,
  config: object = spec.defaults,
  field = 'model.module',
  data: DataShape = defaultDataShape(spec),
): Promise<AdmissionCheck[]> {
  const checks = await checkModel(spec, config, data);
  const failed = checks.find((entry) => !entry.passed);
  if (failed) throw new TesseraError(ErrorCode.InvalidConfig, `model ${spec.id} refused: check "${failed.name}" failed: ${failed.detail}`, { field });
  return checks;
}
