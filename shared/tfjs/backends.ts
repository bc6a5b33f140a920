import * as tf from '@tensorflow/tfjs';
import { median } from '../schedule/schedule.ts';
import { createConvProbe, type Probe } from './probe.ts';

/** A backend a runtime can offer: how to make it available. */
export interface BackendCandidate {
  /** The name tfjs registers it under (`tensorflow`, `webgpu`, `wasm`, `cpu`, ...). */
  name: string;
  /**
   * Imports or registers the backend; returns false when it is not available
   * here, throws with the reason when it is present but not worth using (a
   * software GPU adapter, unless forced).
   */
  load(): Promise<boolean | void>;
}

/** What calibration measured on one backend. */
export interface BackendFigure {
  name: string;
  /** Median time of one probe step after a warm-up step. */
  msPerStep: number;
  /** Examples per second through the probe: comparable across backends, not a model's speed. */
  samplesPerSecond: number;
  /** Timed steps the median is over. */
  steps: number;
}

export interface BackendChoice {
  /** The fastest backend measured; tfjs is set to it. */
  name: string;
  /** Why each candidate that was not measured was passed over. */
  skipped: { name: string; reason: string }[];
  /** Every backend measured, fastest first. */
  figures: BackendFigure[];
}

export interface CalibrationOptions {
  /** The work timed on each backend (default: the conv probe). */
  createProbe?: () => Probe;
  now?: () => number;
  /** Time spent on timed steps per backend, after the warm-up step. */
  budgetMs?: number;
}

/** Timed steps per backend: at least enough for a median, at most enough to stay within milliseconds on a fast one. */
const MIN_STEPS = 3;
const MAX_STEPS = 12;
const DEFAULT_BUDGET_MS = 80;
/** A backend whose first timed step is this many times slower than the best so far is not timed further: it cannot win. */
const HOPELESS_RATIO = 10;

/**
 * Loads every candidate that is available, times a few steps of a real kernel
 * on each (after one warm-up step, which compiles shaders and allocates), and
 * keeps the fastest. Each runtime (Node worker, browser worker) supplies its
 * own candidates and decides which to pass over; this function knows none of
 * them. A single candidate (a backend forced by hand) is loaded but not
 * timed: there is nothing to choose, and a forced software GPU would spend
 * seconds compiling the probe's shaders. Throws when no candidate could start.
 */
export async function selectBackend(candidates: readonly BackendCandidate[], options: CalibrationOptions = {}): Promise<BackendChoice> {
  if (candidates.length === 1) return loadOnly(candidates[0]);
  const skipped: BackendChoice['skipped'] = [];
  const figures: BackendFigure[] = [];
  for (const candidate of candidates) {
    try {
      if ((await candidate.load()) === false) {
        skipped.push({ name: candidate.name, reason: 'not available' });
        continue;
      }
      if (!(await tf.setBackend(candidate.name))) {
        skipped.push({ name: candidate.name, reason: 'failed to initialize' });
        continue;
      }
      await tf.ready();
      const best = figures.reduce((fastest, figure) => Math.min(fastest, figure.msPerStep), Infinity);
      figures.push(await measure(candidate.name, best, options));
    } catch (error) {
      skipped.push({ name: candidate.name, reason: (error as Error).message.split('\n')[0] });
    }
  }
  if (figures.length === 0) {
    throw new Error(`no tfjs backend could start: ${skipped.map((entry) => `${entry.name} (${entry.reason})`).join(', ')}`);
  }
  figures.sort((a, b) => a.msPerStep - b.msPerStep);
  await tf.setBackend(figures[0].name);
  await tf.ready();
  return { name: figures[0].name, skipped, figures };
}

/** Sets the one backend there is, untimed. */
async function loadOnly(candidate: BackendCandidate): Promise<BackendChoice> {
  let reason = 'failed to initialize';
  try {
    if ((await candidate.load()) === false) reason = 'not available';
    else if (await tf.setBackend(candidate.name)) {
      await tf.ready();
      return { name: candidate.name, skipped: [], figures: [] };
    }
  } catch (error) {
    reason = (error as Error).message.split('\n')[0];
  }
  throw new Error(`no tfjs backend could start: ${candidate.name} (${reason})`);
}

/** Times the probe on the current backend; stops early when it is far slower than `bestMs`. */
async function measure(name: string, bestMs: number, options: CalibrationOptions): Promise<BackendFigure> {
  const now = options.now ?? (() => performance.now());
  const budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS;
  const probe = (options.createProbe ?? createConvProbe)();
  try {
    await probe.step();
    const times: number[] = [];
    const started = now();
    while (times.length < MIN_STEPS || (times.length < MAX_STEPS && now() - started < budgetMs)) {
      const stepStarted = now();
      await probe.step();
      times.push(now() - stepStarted);
      if (times[0] > bestMs * HOPELESS_RATIO) break;
    }
    const msPerStep = median(times);
    return { name, msPerStep, samplesPerSecond: (probe.samples * 1000) / Math.max(msPerStep, 1e-3), steps: times.length };
  } finally {
    probe.dispose();
  }
}

/** One line for logs and the join page: `wasm 3.1 ms, cpu 41.0 ms per probe step`. */
export function describeFigures(figures: readonly BackendFigure[]): string {
  return `${figures.map((figure) => `${figure.name} ${figure.msPerStep.toFixed(1)} ms`).join(', ')} per probe step`;
}
