import { readFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { admitForData } from '../../runtime/node/model-modules.ts';
import { getModel } from '../../shared/models/registry.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { loadCheckpoint } from '../checkpoint.ts';
import { parseJobConfig } from '../config.ts';
import type { JobConfig } from '../../shared/api/job-config.ts';
import { Job } from './job.ts';
import { writeFileAtomic } from '../outputs.ts';
import { parseRoundLog, ROUND_LOG } from '../round-log.ts';
import { JobRunner } from './runner.ts';
import { jobData } from '../job-data.ts';

/** Tensor shapes of a config's model, from a throwaway trainer. */
export function shapesOf(config: JobConfig): Record<string, number[]> {
  const spec = getModel(config.model.id);
  const trainer = spec.createTrainer(spec.parseConfig(config.model.config), jobData(config).dataShape);
  const shapes = trainer.shapes;
  trainer.dispose();
  return shapes;
}

/**
 * Opens a job from a (partial) config: from its last checkpoint when its
 * output folder has one, else fresh. Invalid configs throw a TesseraError
 * naming the field. The tfjs backend must be chosen before (weights are
 * initialized and samples drawn with it).
 */
export async function openJob(raw: unknown): Promise<{ runner: JobRunner; resumed: boolean }> {
  const requested = parseJobConfig(raw);
  const checkpoint = await loadCheckpoint(resolve(requested.output.dir, requested.id), shapesOf);
  // A checkpoint's config is the job's: training resumes as it was set up. Only the round budget, the output folder,
  // minWorkers (a property of the fleet at hand: `npm start` sets it to its local workers) and how quality is watched
  // (evalEvery, evalSamples: each quality line names its sample count and floor) may change.
  const { rounds, minWorkers } = requested.training;
  const { dir, evalEvery, evalSamples } = requested.output;
  const config: JobConfig = checkpoint
    ? {
        ...checkpoint.config,
        training: { ...checkpoint.config.training, rounds, minWorkers },
        output: { ...checkpoint.config.output, dir, evalEvery, evalSamples },
      }
    : requested;
  const spec = getModel(config.model.id);
  // The model is built for the dataset's shape and classes; a folder dataset's shards are cut and hashed here, once.
  const { dataShape, dataHash, dataset } = jobData(config);
  if (checkpoint?.state.dataHash && checkpoint.state.dataHash !== dataHash) {
    throw new TesseraError(
      ErrorCode.InvalidConfig,
      `the images under ${config.dataset.path} changed since the job's checkpoint (content hash ${checkpoint.state.dataHash.slice(0, 12)} then, ${dataHash?.slice(0, 12)} now): its shard positions and model belong to the old images. Restore the folder, or train on it as a new job (another id)`,
      { field: 'dataset.path' },
    );
  }
  // A family from a module is checked on that data first, unless it is the data it was admitted on.
  await admitForData(spec, spec.parseConfig(config.model.config), dataShape);
  const samplingTrainer = spec.createTrainer(spec.parseConfig(config.model.config), dataShape);
  const state = checkpoint?.state ?? Job.initialState(spec, samplingTrainer.initialWeights(config.training.seed), config.dataset.shards);
  // A checkpoint from before data hashes adopts the folder as it is now.
  if (dataHash) state.dataHash = dataHash;
  const job = new Job(config, samplingTrainer.shapes, state, dataset().count);
  const runner = new JobRunner(job, samplingTrainer);
  if (checkpoint) {
    const { rounds, quality } = parseRoundLog(await trimRoundLog(runner.outputDir, state.round));
    // The first round's opening is where a quality line's wall time counts from, across restarts.
    const first = rounds[0];
    runner.quality.restore(quality, first ? Date.parse(first.closedAt) - first.durationMs : undefined);
  } else {
    await setAsideRoundLog(runner.outputDir, new Date());
  }
  return { runner, resumed: checkpoint !== undefined };
}

/**
 * With no checkpoint the job starts again at round 0, so a round log left by
 * an earlier start (killed before its first checkpoint, or a job of the same
 * id) would list those rounds twice. It is moved aside, not deleted: it is
 * the only record of that run. Returns the new name, if there was a log.
 */
export async function setAsideRoundLog(dir: string, now: Date): Promise<string | undefined> {
  const path = join(dir, ROUND_LOG);
  const aside = join(dir, `${ROUND_LOG.replace(/\.jsonl$/, '')}-before-${now.toISOString().replace(/[:.]/g, '-')}.jsonl`);
  try {
    await rename(path, aside);
    return aside;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Drops the round log's lines past the checkpoint: those rounds are redone
 * after a restart, and the log must count each round once, as the state does.
 * Quality lines name a round too, and go with it. Returns the lines kept.
 */
async function trimRoundLog(dir: string, nextRound: number): Promise<string> {
  const path = join(dir, ROUND_LOG);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return '';
  }
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const kept = lines.filter((line) => {
    try {
      return (JSON.parse(line) as { round: number }).round < nextRound;
    } catch {
      return false;
    }
  });
  const keptText = kept.map((line) => `${line}\n`).join('');
  if (kept.length !== lines.length) await writeFileAtomic(path, keptText);
  return keptText;
}
