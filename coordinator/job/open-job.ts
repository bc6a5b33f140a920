import { resolve } from 'node:path';
import { admitForData } from '../../runtime/node/model-modules.ts';
import { getModel } from '../../shared/models/registry.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { decodeCheckpoint, loadCheckpoint, type Checkpoint } from '../checkpoint.ts';
import { elementCount } from '../../shared/codec/tensor-wire.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { samplingWeights } from './state.ts';
import { INIT_FROM_STORE, parseJobConfig } from '../config.ts';
import type { JobConfig } from '../../shared/api/job-config.ts';
import { Job } from './job.ts';
import { parseRoundLog } from '../round-log.ts';
import { folderStores } from '../store/folder-store.ts';
import type { JobStore, JobStores } from '../store/job-store.ts';
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
 * The sampling weights (the EMA where kept) of the checkpoint that
 * config.model.initFrom names, for a new job of the same model to start
 * from: a folder, or `store:<job id>` for that job's checkpoint in `stores`
 * (JetStream's with `--store nats`). Refused (INVALID_CONFIG at
 * model.initFrom) when there is no checkpoint there, or its model or a
 * tensor's shape differs.
 */
async function weightsToStartFrom(config: JobConfig, shapes: Record<string, number[]>, stores: JobStores): Promise<NamedArrays> {
  const initFrom = config.model.initFrom!;
  const refuse = (message: string) => new TesseraError(ErrorCode.InvalidConfig, message, { field: 'model.initFrom' });
  const { where, read } = checkpointAt(initFrom, config, stores);
  const source = await read().catch((error: unknown) => {
    throw refuse(`the checkpoint ${where} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  });
  if (!source) throw refuse(`no checkpoint ${where}`);
  if (source.config.model.id !== config.model.id)
    throw refuse(`the checkpoint ${where} is of model ${source.config.model.id}, this job trains ${config.model.id}`);
  const weights = samplingWeights(source.state);
  for (const [name, shape] of Object.entries(shapes)) {
    const length = elementCount(shape);
    if (weights[name]?.length !== length)
      throw refuse(`tensor ${name} of the checkpoint ${where} has ${weights[name]?.length ?? 0} values, this job's model ${length} (another model config?)`);
  }
  return Object.fromEntries(Object.keys(shapes).map((name) => [name, weights[name].slice()]));
}

/** Where model.initFrom's checkpoint is, for messages, and its reading: a folder's, or a job's in the store. */
function checkpointAt(initFrom: string, config: JobConfig, stores: JobStores): { where: string; read(): Promise<Checkpoint | undefined> } {
  if (!initFrom.startsWith(INIT_FROM_STORE)) {
    const dir = resolve(initFrom);
    return { where: `in ${dir}`, read: () => loadCheckpoint(dir, shapesOf) };
  }
  const id = initFrom.slice(INIT_FROM_STORE.length);
  return {
    where: `of job ${id} in the ${stores.kind} store`,
    read: async () => {
      const outputDir = resolve(config.output.dir, id);
      if (!(await stores.has(id, outputDir))) return undefined;
      const store = await stores.open(id, outputDir);
      try {
        const bytes = await store.loadCheckpoint();
        return bytes && decodeCheckpoint(bytes, shapesOf);
      } finally {
        await store.close();
      }
    },
  };
}

/**
 * Opens a job from a (partial) config: from its last checkpoint when its
 * store has one, else fresh. The store is the job's output folder unless
 * `stores` says otherwise (`--store nats`). Invalid configs throw a
 * TesseraError naming the field. The tfjs backend must be chosen before
 * (weights are initialized and samples drawn with it).
 */
export async function openJob(raw: unknown, stores: JobStores = folderStores): Promise<{ runner: JobRunner; resumed: boolean }> {
  const requested = parseJobConfig(raw);
  const store = await stores.open(requested.id, resolve(requested.output.dir, requested.id));
  try {
    return await openFromStore(requested, store, stores);
  } catch (error) {
    await store.close();
    throw error;
  }
}

async function openFromStore(requested: JobConfig, store: JobStore, stores: JobStores): Promise<{ runner: JobRunner; resumed: boolean }> {
  const bytes = await store.loadCheckpoint();
  const checkpoint = bytes && decodeCheckpoint(bytes, shapesOf);
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
  const modelConfig = spec.parseConfig(config.model.config);
  await admitForData(spec, modelConfig, dataShape);
  const samplingTrainer = spec.createTrainer(modelConfig, dataShape);
  const initial = () =>
    config.model.initFrom ? weightsToStartFrom(config, samplingTrainer.shapes, stores) : Promise.resolve(samplingTrainer.initialWeights(config.training.seed));
  const state = checkpoint?.state ?? Job.initialState(spec, await initial(), config.dataset.shards);
  // A checkpoint from before data hashes adopts the folder as it is now.
  if (dataHash) state.dataHash = dataHash;
  const job = new Job(config, samplingTrainer.shapes, state, dataset().count);
  const runner = new JobRunner(job, samplingTrainer, Date.now, {}, undefined, store);
  if (checkpoint) {
    // The rounds past the checkpoint are played again, and the log must count each round once, as the state does.
    const { rounds, quality } = parseRoundLog((await store.trimRounds(state.round)).join('\n'));
    // The first round's opening is where a quality line's wall time counts from, across restarts.
    const first = rounds[0];
    runner.quality.restore(quality, first ? Date.parse(first.closedAt) - first.durationMs : undefined);
  } else {
    // Round 0 again: a log left by an earlier start (killed before its first checkpoint, or a job of the same id)
    // would list those rounds twice. It is set aside, not deleted: it is the only record of that run.
    await store.setAsideRounds(new Date());
  }
  runner.outputs.recordStatus(checkpoint ? { round: state.round, version: state.version, savedAt: checkpoint.savedAt } : null);
  return { runner, resumed: checkpoint !== undefined };
}
