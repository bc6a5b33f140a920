import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../codec/types.ts';
import { getModel } from '../models/registry.ts';
import type { Batch, DataShape, OptimizerConfig, Trainer } from '../models/types.ts';
import { runLocalSteps, type InnerState } from '../training/local-steps.ts';
import { exampleNoise, localStepNoise } from '../training/noise.ts';

/** The model a job trains, as its welcome names it. */
export interface ModelRef {
  id: string;
  config: Record<string, unknown>;
}

/** One round's work, by value: the compute may run in another thread. */
export interface StepRequest {
  model: ModelRef;
  data: DataShape;
  weightsHash: string;
  /** The weights at `weightsHash` (a compute that holds them already loaded does not read them). */
  weights: NamedArrays;
  batch: Batch;
  /** The round's seed and the batch's dataset indices: each example's noise comes from them (shared/training/noise.ts). */
  seed: number;
  sampleIndices: readonly number[];
  /** Local-update mode: this many inner optimizer steps with these optimizers, and the weight delta as the result. */
  localSteps?: number;
  innerOptimizers?: Record<string, OptimizerConfig>;
  /** Stretch the step to this many times its length (1: not at all). */
  throttle: number;
}

export interface StepResult {
  /** The gradient at the given weights, or in local-update mode the weight delta after the inner steps. */
  grads: NamedArrays;
  losses: Record<string, number>;
  /** Tensors alive on the compute's tfjs engine after the step (a leak shows as a number that grows). */
  numTensors: number;
}

/**
 * Where a worker's steps run: in the client's own thread (a tab's Web Worker,
 * tests) or in a Node worker_thread (runtime/node/compute-thread.ts), which
 * leaves the client's thread free for heartbeats and messages during a step.
 */
export interface StepCompute {
  /** Canonical name -> shape of every tensor of the model built for `data` (building it when the model or data changed). */
  shapes(model: ModelRef, data: DataShape): Promise<Record<string, number[]>>;
  step(request: StepRequest): Promise<StepResult>;
  /** Frees the trainer (and the thread, if any); no step runs after. */
  dispose(): void;
}

/** Waits `ms` without holding the thread: a tab's rest between steps (its load limit). */
const restFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Computes in the calling thread: builds the trainer for the welcome's model
 * and data, loads weights when their hash changes, keeps local-update mode's
 * inner optimizer state across rounds (as DiLoCo does). A throttled step is
 * followed by `stretch(extraMs)`: a rest by default; a compute thread passes
 * a wait that holds it, as a slower device would.
 */
export class LocalCompute implements StepCompute {
  private current: Trainer | undefined;
  private trainerKey = '';
  private loadedHash = '';
  /** Local-update mode's inner optimizer state, kept across rounds as DiLoCo does. */
  private readonly innerState: InnerState = {};

  constructor(private readonly stretch: (ms: number) => void | Promise<void> = restFor) {}

  /** The trainer of the last model asked for (for sampling, tests). */
  get trainer(): Trainer | undefined {
    return this.current;
  }

  /** The hash of the weights loaded in the trainer, '' when none or moved by local steps. */
  get weightsHash(): string {
    return this.loadedHash;
  }

  async shapes(model: ModelRef, data: DataShape): Promise<Record<string, number[]>> {
    return this.trainerFor(model, data).shapes;
  }

  async step(request: StepRequest): Promise<StepResult> {
    const started = performance.now();
    const result = await this.compute(request);
    if (request.throttle > 1) await this.stretch((performance.now() - started) * (request.throttle - 1));
    return result;
  }

  dispose(): void {
    this.current?.dispose();
    this.current = undefined;
    this.trainerKey = '';
    this.loadedHash = '';
  }

  private async compute(request: StepRequest): Promise<StepResult> {
    const trainer = this.trainerFor(request.model, request.data);
    const { weights, batch, seed, sampleIndices } = request;
    if ((request.localSteps ?? 1) > 1 && request.innerOptimizers) {
      // The inner steps move the trainer's weights away from any published version.
      this.loadedHash = '';
      const noise = localStepNoise(trainer, seed, sampleIndices);
      const { delta, losses } = await runLocalSteps(
        trainer,
        getModel(request.model.id),
        weights,
        batch,
        request.localSteps!,
        noise,
        request.innerOptimizers,
        this.innerState,
      );
      return { grads: delta, losses, numTensors: tf.memory().numTensors };
    }
    if (this.loadedHash !== request.weightsHash) {
      trainer.setWeights(weights);
      this.loadedHash = request.weightsHash;
    }
    const { grads, losses } = await trainer.lossAndGrads(batch, exampleNoise(trainer, seed, sampleIndices));
    return { grads, losses, numTensors: tf.memory().numTensors };
  }

  private trainerFor(model: ModelRef, data: DataShape): Trainer {
    // The dataset's shape and classes build the model too.
    const key = JSON.stringify([model, data.imageShape, data.classes]);
    if (!this.current || this.trainerKey !== key) {
      this.current?.dispose();
      this.current = undefined;
      const spec = getModel(model.id);
      this.current = spec.createTrainer(spec.parseConfig(model.config), { imageShape: data.imageShape, classes: data.classes });
      this.trainerKey = key;
      this.loadedHash = '';
      // Inner optimizer moments belong to the old model's tensors.
      for (const network of Object.keys(this.innerState)) delete this.innerState[network];
    }
    return this.current;
  }
}
