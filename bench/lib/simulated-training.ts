import { parseJobConfig } from '../../coordinator/config.ts';
import type { JobConfig } from '../../shared/api/job-config.ts';
import { Job } from '../../coordinator/job/job.ts';
import { samplingWeights } from '../../coordinator/job/state.ts';
import { codecSlack } from '../../coordinator/verification-compare.ts';
import { l2Norm } from '../../shared/aggregate/norms.ts';
import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors, tensorsToArrays } from '../../shared/codec/named.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import type { InMemoryDataset } from '../../shared/data/dataset.ts';
import type { ModelSpec, OptimizerConfig, Trainer } from '../../shared/models/types.ts';
import { runLocalSteps, type InnerState } from '../../shared/training/local-steps.ts';
import { exampleNoise, localStepNoise } from '../../shared/training/noise.ts';
import { ErrorFeedback } from '../../shared/worker/error-feedback.ts';

/** One training run of the real Job with simulated workers in this process. */
export interface SimulatedRun {
  spec: ModelSpec<any>;
  /** The trainer every simulated worker computes with (one process: they take turns). */
  trainer: Trainer;
  dataset: InMemoryDataset;
  /** The weights the job starts from (copied, never changed). */
  initial: NamedArrays;
  /** Simulated workers, ids w0, w1, ... */
  workers: number;
  /** Samples per worker and optimizer step (in local mode: per inner step). */
  batchPerWorker: number;
  /** Samples to train on: rounds are as many as make this many, to the nearest whole round. */
  samples: number;
  /** Overrides of the job's `training` config (mode, localSteps, codec, lrScaling, ...); batchSize follows batchPerWorker. */
  training?: Record<string, unknown>;
  /** The model config (the spec's defaults fill the rest). */
  modelConfig?: Record<string, unknown>;
  /** Overrides of each network's optimizer, by network. */
  optimizers?: Record<string, Partial<OptimizerConfig>>;
  /** Called after every round (for curves: score the job's sampling weights every so often). */
  afterRound?: (job: Job) => Promise<void> | void;
  /** Asked after every round: true ends the run early (a budget of CPU time rather than of samples). */
  stop?: (job: Job) => boolean;
}

/** What a simulated run did. */
export interface SimulatedResult {
  config: JobConfig;
  job: Job;
  rounds: number;
  /** Encoded update bytes the workers sent, with the job's codec. */
  bytes: number;
  /** Updates the aggregation rule clipped or found beyond its radius (the mean is then not the plain mean). */
  outliers: number;
  /**
   * With error feedback: tensors sent and how many carried a shortened residual, and ||sent - gradient|| as a share of
   * the verification's slack for it (coordinator/verification-compare.ts), the largest and the mean over tensors sent.
   */
  feedback?: { tensors: number; shortened: number; worstShareOfSlack: number; meanShareOfSlack: number };
  /** The weights to sample from: the moving average when the model keeps one. */
  weights: NamedArrays;
  seconds: number;
}

/**
 * Trains with the real Job (validation, codec, aggregation, optimizers,
 * shard dealing and sampling) and `workers` simulated workers that compute
 * in turn in this process, as the worker client does: the gradient at the
 * round's weights with each example's noise from the round's seed, or in local mode
 * the weight delta after the inner steps. No transport: the bytes are the
 * encoded updates' sizes.
 */
export async function simulateTraining(run: SimulatedRun): Promise<SimulatedResult> {
  const { spec, trainer, dataset } = run;
  const config = parseJobConfig({
    model: { id: spec.id, config: run.modelConfig ?? {} },
    training: { batching: 'equal', deadline: 'fixed', ...run.training, batchSize: run.batchPerWorker },
    optimizers: run.optimizers ?? {},
  });
  const { training } = config;
  const job = new Job(config, trainer.shapes, Job.initialState(spec, structuredClone(run.initial), config.dataset.shards), dataset.count);
  const ids = Array.from({ length: run.workers }, (_, i) => `w${i}`);
  const perWorker = run.batchPerWorker * (training.mode === 'local' ? training.localSteps : 1);
  const rounds = Math.max(1, Math.round(run.samples / (perWorker * run.workers)));
  const inner: Record<string, InnerState> = Object.fromEntries(ids.map((id) => [id, {}]));
  // Each worker's residuals when the assignments ask for error feedback, kept as the worker client keeps them.
  const feedback: Record<string, ErrorFeedback> = Object.fromEntries(ids.map((id) => [id, new ErrorFeedback()]));
  const codec = getCodec(training.codec);
  let bytes = 0;
  let outliers = 0;
  const slack = codecSlack(training.codec, { errorFeedback: true });
  const shares: number[] = [];
  const started = performance.now();
  for (let r = 0; r < rounds; r++) {
    const round = await job.openRound(
      ids.map((id) => ({ id, batchSize: perWorker })),
      r,
    );
    for (const [workerId, { message }] of round.assignments) {
      const batch = dataset.batch(message.sampleIndices);
      let result;
      if (message.localSteps && message.localSteps > 1) {
        const noise = localStepNoise(trainer, message.seed, message.sampleIndices);
        const { delta, losses } = await runLocalSteps(
          trainer,
          spec,
          job.state.weights,
          batch,
          message.localSteps,
          noise,
          message.innerOptimizers!,
          inner[workerId],
        );
        result = { grads: delta, losses };
      } else {
        trainer.setWeights(job.state.weights);
        result = await trainer.lossAndGrads(batch, exampleNoise(trainer, message.seed, message.sampleIndices));
      }
      // A copy: the encoder's output views a buffer the next encode reuses (encodeWithFeedback copies too).
      const tensors = message.errorFeedback
        ? feedback[workerId].encode(codec, result.grads, trainer.shapes, message.round)
        : codec.encode(arraysToTensors(result.grads, trainer.shapes)).slice();
      if (message.errorFeedback) {
        const sent = tensorsToArrays(codec.decode(tensors), trainer.shapes);
        for (const [name, values] of Object.entries(sent)) shares.push(l2Norm(values.map((v, i) => v - result.grads[name][i])) / slack(values));
      }
      bytes += tensors.byteLength;
      const timing = { computeMs: 1, fetchMs: 0 };
      job.acceptUpdate(
        workerId,
        {
          type: 'update',
          jobId: config.id,
          round: message.round,
          version: message.version,
          weightsHash: message.weightsHash,
          samples: batch.count,
          codec: codec.id,
          tensors,
          losses: result.losses,
          timing,
        },
        r,
      );
      feedback[workerId].accepted(message.round);
    }
    outliers += job.closeRound(r + 1).outliers.length;
    await run.afterRound?.(job);
    if (run.stop?.(job)) break;
  }
  const counts = Object.values(feedback).map((worker) => worker.counts);
  const measured =
    shares.length === 0
      ? undefined
      : {
          tensors: counts.reduce((sum, count) => sum + count.tensors, 0),
          shortened: counts.reduce((sum, count) => sum + count.shortened, 0),
          worstShareOfSlack: Math.max(...shares),
          meanShareOfSlack: shares.reduce((sum, share) => sum + share, 0) / shares.length,
        };
  const seconds = (performance.now() - started) / 1000;
  return { config, job, rounds: job.state.version, bytes, outliers, feedback: measured, weights: samplingWeights(job.state), seconds };
}
