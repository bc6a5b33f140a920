import type { NamedArrays } from '../codec/types.ts';
import type { Batch, ModelSpec, Trainer } from '../models/types.ts';
import { createUniform } from '../training/random.ts';

/** How long one training step of a model takes on this runtime: a fixed part (dispatch, read-back) and a part per sample. */
export interface StepTime {
  fixedMs: number;
  perSampleMs: number;
}

/** The time a step over `samples` examples is expected to take. */
export function stepMs(time: StepTime, samples: number): number {
  return time.fixedMs + samples * time.perSampleMs;
}

/** Samples per second at a given batch size: the fixed part weighs on small batches. */
export function samplesPerSecondAt(time: StepTime, samples: number): number {
  return (samples * 1000) / Math.max(stepMs(time, samples), 1e-3);
}

/**
 * A straight line through (samples, ms) measurements by least squares, with
 * neither part below zero (timing noise can tilt a line through two sizes).
 */
export function fitStepTime(points: readonly { samples: number; ms: number }[]): StepTime {
  if (points.length === 0) throw new Error('fitStepTime needs at least one measurement');
  const n = points.length;
  const meanX = points.reduce((sum, point) => sum + point.samples, 0) / n;
  const meanY = points.reduce((sum, point) => sum + point.ms, 0) / n;
  const spread = points.reduce((sum, point) => sum + (point.samples - meanX) ** 2, 0);
  if (spread === 0) return { fixedMs: 0, perSampleMs: meanY / Math.max(meanX, 1) };
  const slope = points.reduce((sum, point) => sum + (point.samples - meanX) * (point.ms - meanY), 0) / spread;
  if (slope <= 0) return { fixedMs: 0, perSampleMs: meanY / Math.max(meanX, 1) };
  const intercept = meanY - slope * meanX;
  // A negative intercept is noise: all the time is then per sample, through the mean.
  return intercept >= 0 ? { fixedMs: intercept, perSampleMs: slope } : { fixedMs: 0, perSampleMs: meanY / meanX };
}

/** Batch sizes timed: one example shows the fixed cost, a few show the cost per example. */
export const SPEED_CHECK_SIZES = [1, 8] as const;

/**
 * Times real training steps on the current tfjs backend with the trainer's
 * current weights, on synthetic examples of the model's shape: a warm-up step
 * at each size (shader compiles, allocations), then each size `repeats`
 * times, keeping the fastest (a slower one has caught a pause, a collection or
 * another process's burst, which are not the device's speed).
 * Returns the fitted step time and the last step's gradients (for timing
 * their encoding).
 */
export async function measureStepTime(
  trainer: Trainer,
  spec: Pick<ModelSpec<any>, 'imageShape' | 'classes'>,
  sizes: readonly number[] = SPEED_CHECK_SIZES,
  { repeats = 3, now = () => performance.now() }: { repeats?: number; now?: () => number } = {},
): Promise<{ time: StepTime; grads: NamedArrays }> {
  let grads: NamedArrays = {};
  const step = async (samples: number) => {
    const batch = syntheticBatch(spec, samples);
    const started = now();
    grads = (await trainer.lossAndGrads(batch, trainer.drawNoise(samples, samples))).grads;
    return now() - started;
  };
  for (const samples of sizes) await step(samples);
  const points: { samples: number; ms: number }[] = [];
  for (const samples of sizes) {
    let fastest = Infinity;
    for (let repeat = 0; repeat < repeats; repeat++) fastest = Math.min(fastest, await step(samples));
    points.push({ samples, ms: fastest });
  }
  return { time: fitStepTime(points), grads };
}

/**
 * Seeded pixels in [0, 1] and labels cycling through the classes, of the model's shape: a step's cost does not
 * depend on what the images show, and the model checks at load need no dataset (shared/models/admission.ts).
 */
export function syntheticBatch(spec: Pick<ModelSpec<any>, 'imageShape' | 'classes'>, count: number, seed = count): Batch {
  const [height, width, channels] = spec.imageShape;
  const uniform = createUniform(seed);
  const images = new Float32Array(count * height * width * channels);
  for (let i = 0; i < images.length; i++) images[i] = uniform();
  const labels = Int32Array.from({ length: count }, (_, i) => (spec.classes > 0 ? i % spec.classes : 0));
  return { images, labels, count };
}
