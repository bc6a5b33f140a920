import { getCodec } from '../shared/codec/index.ts';
import { tensorsToArrays } from '../shared/codec/named.ts';
import type { Trainer } from '../shared/models/types.ts';
import { exampleNoise } from '../shared/training/noise.ts';
import type { Job } from './job/job.ts';
import { jobData } from './job-data.ts';
import type { Referee } from './verification.ts';

/**
 * The coordinator as referee: recomputes a disputed assignment with its own
 * trainer of the job's model, on its own tfjs backend, from the same weights,
 * examples and seed. The trainer is built at the first dispute (a job whose
 * workers never disagree never pays for it) and is not the runner's samplingTrainer,
 * whose weights the output writer sets.
 */
export function trainerReferee(job: Job): Referee {
  let trainer: Trainer | undefined;
  return {
    async recompute(assign, weightsBytes) {
      trainer ??= job.spec.createTrainer(job.spec.parseConfig(job.config.model.config), jobData(job.config).dataShape);
      trainer.setWeights(tensorsToArrays(getCodec('f32').decode(weightsBytes), trainer.shapes, 'weights'));
      const batch = jobData(job.config).dataset().batch(assign.sampleIndices);
      const { grads } = await trainer.lossAndGrads(batch, exampleNoise(trainer, assign.seed, assign.sampleIndices));
      return grads;
    },
    dispose() {
      trainer?.dispose();
      trainer = undefined;
    },
  };
}
