import { getModel } from '../../shared/models/registry.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { loadCheckpoint } from '../checkpoint.ts';
import { samplingWeights } from '../job/state.ts';
import { shapesOf } from '../job/open-job.ts';
import type { SampleSource } from './sources.ts';

/** A job's checkpoint: the trainer rebuilt from its config, with its sampling weights (the EMA when the job keeps one). */
export async function openCheckpoint(dir: string): Promise<SampleSource> {
  const checkpoint = await loadCheckpoint(dir, shapesOf);
  if (!checkpoint) throw new TesseraError(ErrorCode.BadCheckpoint, `no checkpoint in ${dir}`, { field: 'PATH' });
  const { config, state } = checkpoint;
  const spec = getModel(config.model.id);
  const trainer = spec.createTrainer(spec.parseConfig(config.model.config));
  trainer.setWeights(samplingWeights(state));
  return {
    description: `checkpoint of job ${config.id} (${spec.id}, round ${state.round}, ${state.ema ? 'EMA' : 'trained'} weights)`,
    dataset: config.dataset.id,
    heldOutFraction: config.dataset.heldOutFraction,
    splitSeed: config.training.seed,
    score: (evaluator, count, seed, options) => evaluator.scoreTrainer(trainer, spec, count, seed, options),
    dispose: () => trainer.dispose(),
  };
}
