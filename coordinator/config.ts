import { MAX_TRIM_FRACTION, getRule, listRules, type AggregationOptions } from '../shared/aggregate/index.ts';
import { listCodecs } from '../shared/codec/index.ts';
import * as check from '../shared/protocol/check.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { fields, jsonSchemaOf, parseConfig, type Field, type JsonSchema, type JsonSchemaOptions, type Schema } from '../shared/protocol/schema.ts';
import { describeDataset, getDatasetSpec, listDatasets } from '../runtime/node/datasets.ts';
import { MAX_SHARD_BYTES, SHARD_BYTES_PER_EXAMPLE } from '../shared/data/shard-blobs.ts';
import { checkDataShape } from '../shared/models/data-shape.ts';
import { getModel, listModels } from '../shared/models/registry.ts';
import type { OptimizerConfig } from '../shared/models/types.ts';
import { LR_SCALING_RULES } from '../shared/training/lr-scaling.ts';
import type { DatasetConfig, JobConfig, OutputConfig, TrainingConfig, VerificationConfig } from '../shared/api/job-config.ts';

/** Image sides `images` may be resized to: 8 is the least the models can halve twice; 256 keeps a 64-image batch under 50 MB as float32. */
const SIDE = { min: 8, max: 256 };

/** dataset.shape: [height, width, 1 or 3]; absent, the dataset's own (32x32x3 for images), filled in by parseJobConfig. */
const shapeField: Field<[number, number, number] | undefined> = {
  default: undefined,
  parse: (value, field) => {
    const values = check.integerArray(value, field, 3, 1, SIDE.max);
    if (values.length !== 3 || values[0] < SIDE.min || values[1] < SIDE.min || (values[2] !== 1 && values[2] !== 3)) {
      check.oneOf(JSON.stringify(value), field, [`[height, width, channels]: sides ${SIDE.min}-${SIDE.max}, 1 (grey) or 3 (RGB) channels`]);
    }
    return [values[0], values[1], values[2]];
  },
  jsonSchema: () => ({
    type: 'array',
    description: "[height, width, channels] the images dataset resizes to (default [32, 32, 3]); a packaged dataset's own shape otherwise",
    items: { type: 'integer', minimum: 1, maximum: SIDE.max },
    minItems: 3,
    maxItems: 3,
  }),
};

/** The dataset keys as parsed: the shape is filled in from the dataset when absent. */
type ParsedDataset = Omit<DatasetConfig, 'shape'> & { shape: [number, number, number] | undefined };

const datasetSchema: Schema<ParsedDataset> = {
  id: fields.oneOf(
    'mnist',
    listDatasets().map((dataset) => dataset.id),
  ),
  // 10% held out: 1,000 of MNIST's 10,000 digits (7,000 of Fashion-MNIST's 70,000), enough to evaluate on.
  heldOutFraction: fields.number(0.1, 0, 0.9),
  // 16 shards deal evenly over 1, 2, 4, 8 or 16 workers and are small enough to move when one leaves.
  shards: fields.integer(16, 1, 4096),
  // A folder of PNG/JPEG files, one subfolder per class (or none): the `images` dataset reads it, the others none.
  path: fields.string('', 4096),
  shape: shapeField,
};

const verificationSchema: Schema<VerificationConfig> = {
  // One assignment in 20 is computed twice: a hostile worker in a fleet of 4 is checked about every 10th round, at 5% of the compute.
  // 0 turns duplicates off (trust then follows outlier flags and refusals only, and a quarantined worker waits for an admin).
  duplicateShare: fields.number(0.05, 0, 1),
  // Largest relative L2 distance of any tensor for two gradients of one assignment to agree (coordinator/verification-compare.ts):
  // browser webgpu and wasm agree with Node's cpu within 1e-3 (test/browser.test.ts), Node's wasm and cpu within 4e-5. Lossy codecs add their error bound.
  tolerance: fields.number(1e-3, 0, 1),
  // Trust starts at 1; a confirmed mismatch costs 0.4, so two quarantine a worker (see coordinator/trust.ts for every step).
  quarantineBelow: fields.number(0.3, 0, 1),
  // A quarantined worker only gets copies of others' work; agreeing ones bring it back above this.
  releaseAbove: fields.number(0.6, 0, 1),
};

const aggregationSchema: Schema<AggregationOptions> = {
  // No update carries more than half a round's weight once 3 or more are in it (with fewer the cap is lifted: two
  // cannot outvote each other): a weight the scheduler got wrong, or was lied to about, still cannot outvote the rest.
  maxShare: fields.number(0.5, 0.01, 1),
  // 0 derives the radius from the round: 4x the typical norm (or distance from the centre), scaled to each update's
  // batch. A fixed value would need retuning per model and as gradients shrink during training.
  clipNorm: fields.number(0, 0, Number.MAX_VALUE),
  // A quarter of the weight at each end: among four equal workers, one hostile one is trimmed at every coordinate.
  trimFraction: fields.number(0.25, 0, MAX_TRIM_FRACTION),
  // Karimireddy et al. use 1 to 5 from a robust start; the iterations stop early once the centre stops moving.
  iterations: fields.integer(5, 0, 100),
};

/**
 * training.aggregator: one rule id for every network, or `{ <network>: <ruleId> }`
 * (networks left out keep the default). Resolved, it names a rule per network.
 * The default, mean, is the sample-weighted mean the coordinator has always
 * applied, now with norms clipped and shares capped (training.aggregation);
 * trimmed-mean or centered-clip hold against hostile workers (docs/architecture.md).
 */
function aggregatorField(networks: readonly string[]): Field<Record<string, string>> {
  const everywhere = (id: string) => Object.fromEntries(networks.map((network) => [network, id]));
  return {
    default: everywhere('mean'),
    parse: (value, field) => {
      if (typeof value === 'string') return everywhere(getRule(value, field).id);
      const perNetwork = check.record(value, field, networks);
      return Object.fromEntries(
        networks.map((network) => {
          const id = perNetwork[network];
          return [network, id === undefined ? 'mean' : getRule(check.string(id, `${field}.${network}`, 64), `${field}.${network}`).id];
        }),
      );
    },
  };
}

const trainingSchema: Schema<Omit<TrainingConfig, 'aggregator'>> = {
  // Per worker and round on average (a round trains batchSize x workers samples); 32 keeps a wasm round near a second on one core.
  batchSize: fields.integer(32, 1, 4096),
  // 'throughput' splits a round's samples in proportion to each worker's measured speed, so all finish together; 'equal' gives each batchSize.
  batching: fields.oneOf('throughput', ['throughput', 'equal'] as const),
  // No worker gets more than half of a round when 3 or more are in it: one worker's update never outweighs the others
  // together, whatever it measures as. With 1 or 2 workers there is no cap (only the growth bound); 0 gives everyone the equal share.
  maxWorkerShare: fields.number(0.5, 0, 1),
  // A worker's batch grows at most x1.5 (or by one sample) per round, so a speed gained in one round buys influence slowly;
  // an honest fast worker still reaches its proportional share in a few rounds (x2 in 2, x3 in 3). Shrinking is not bounded.
  maxBatchGrowth: fields.number(1.5, 1, 100),
  // 0 trains until stopped.
  rounds: fields.integer(0, 0, 10_000_000),
  // A round starts only when this many workers are connected; below it the job says it is waiting.
  minWorkers: fields.integer(1, 1, 100_000),
  // The longest a round waits: it closes with what has arrived (a lost worker is not waited for). The adaptive deadline's ceiling.
  roundDeadlineMs: fields.integer(60_000, 100, 3_600_000),
  // 'adaptive': median finish time x 1.5 + 4 MAD of recent rounds, between the floor and roundDeadlineMs; 'fixed': always roundDeadlineMs.
  deadline: fields.oneOf('adaptive', ['adaptive', 'fixed'] as const),
  // Below 2 s a hiccup (a GC pause, a weights fetch) would cut healthy workers off.
  deadlineFloorMs: fields.integer(2_000, 50, 3_600_000),
  // An update that arrives after its round closed: dropped, or applied to the next round with its weight discounted per version it is behind.
  lateUpdates: fields.oneOf('drop', ['drop', 'stale'] as const),
  // Halving per version behind: a gradient one step stale still helps, three steps stale little.
  stalenessDecay: fields.number(0.5, 0, 1),
  // Older than this many versions, a late update is dropped whatever the policy.
  maxStaleness: fields.integer(2, 1, 100),
  // 'sync': workers send gradients and the coordinator steps each network's Adam. 'local' (DiLoCo): workers take localSteps
  // inner Adam steps on batchSize x localSteps samples and send the weight delta; the coordinator steps an outer Nesterov SGD.
  mode: fields.oneOf('sync', ['sync', 'local'] as const),
  // 8 inner steps cut update bytes per sample 8x; DiLoCo uses hundreds on fast links, browsers on slow ones want a few.
  localSteps: fields.integer(8, 1, 10_000),
  // DiLoCo's outer settings: lr 0.7 with Nesterov momentum 0.9.
  outerLearningRate: fields.number(0.7, 0, 10),
  outerMomentum: fields.number(0.9, 0, 0.999),
  seed: fields.integer(1, 0, 2 ** 32 - 1),
  codec: {
    default: 'f32',
    parse: (value, field) =>
      check.oneOf(
        value,
        field,
        listCodecs().map((codec) => codec.id),
      ),
    jsonSchema: () => ({ type: 'string', enum: listCodecs().map((codec) => codec.id), default: 'f32' }),
  },
  // Error feedback for a lossy codec in sync mode: each worker adds what the codec's rounding took from its last updates to
  // the next (shared/worker/error-feedback.ts). Off by default: at equal samples it changed no quality measure beyond the
  // run-to-run spread (docs/training-runs.md), and it doubles the codec's slack in verification (coordinator/verification-compare.ts).
  errorFeedback: fields.boolean(false),
  // An update whose global gradient norm exceeds this is refused as corrupt (no honest gradient comes near it); 0 turns
  // the check off. It is the guard against garbage, not the defence against large updates: the aggregation rules
  // clip those (training.aggregation), which bounds their pull without throwing away a worker's round.
  maxGradNorm: fields.number(1e4, 0, Number.MAX_VALUE),
  // A round of this many workers or more has its updates decoded, checked and folded in a worker thread (the coordinator's
  // second core) while the event loop reads the next ones off the sockets (docs/performance.md); 0 never does. Below it
  // the thread's hop costs more than it saves: the 2 local workers of `npm start` fold on the event loop.
  foldThreadFrom: fields.integer(32, 0, 1_000_000),
  aggregation: fields.nested(aggregationSchema),
  // How the optimizers' learning rates follow a round's global batch (its samples: batchSize x workers), which an
  // autoscaler changes (shared/training/lr-scaling.ts): 'sqrt' is the rule for Adam. 'none' by default, so a run
  // repeats exactly whatever the fleet and each step equals one process's step on the union batch; the autoscaled
  // deployment (k8s/base/job.json) sets 'sqrt'. Synchronous mode only: in local mode each worker's inner batch is its own.
  lrScaling: fields.oneOf('none', LR_SCALING_RULES),
  // The global batch the learning rates are set for: 64 is what `npm start` trains (2 local workers x 32), where the
  // model defaults were tried.
  referenceBatch: fields.integer(64, 1, 1_000_000),
  // Training steps over which the learning rates halve (exponential decay, after the batch scaling); 0 keeps them
  // constant. A GAN's late steps then move less, so its samples settle (docs/training-runs.md).
  lrHalfLife: fields.integer(0, 0, 1_000_000_000),
  verification: fields.nested(verificationSchema),
};

const outputSchema: Schema<OutputConfig> = {
  dir: fields.string('runs', 1024),
  // Every 10 rounds: a restart redoes at most 9 rounds, and a checkpoint (~8 MB) costs ~10 ms.
  checkpointEvery: fields.integer(10, 1, 1_000_000),
  sampleEvery: fields.integer(25, 1, 1_000_000),
  exportEvery: fields.integer(100, 1, 1_000_000),
  // 64 samples make an 8 x 8 grid.
  sampleCount: fields.integer(64, 1, 1024),
  // Sample quality scored in a thread of its own (coordinator/quality/) every this many training steps; 0 turns it off.
  // `npm start` closes about a round a second: 200 is a point every ~3 minutes, 10 over the 30 minutes a recipe gets,
  // each 2-3 s of one core for its DCGAN (bench/quality-thread.ts), ~1% of the machine its workers train on. A DDPM
  // samples far slower (~5 minutes for 500 at 50 DDIM steps): give it fewer samples or a longer interval.
  evalEvery: fields.integer(200, 0, 1_000_000),
  // 500 samples: the Fréchet distance's small-count bias is a few times smaller than at the grids' 64 (its floor is
  // reported beside it), and the k-NN precision and recall have enough neighbours to mean something.
  evalSamples: fields.integer(500, 10, 5_000),
};

/** The optimizer schema with a network's own defaults (the model spec gives them, with reasons). */
function optimizerSchemaWith(defaults: OptimizerConfig): Schema<OptimizerConfig> {
  return {
    learningRate: fields.number(defaults.learningRate, 0, 10),
    beta1: fields.number(defaults.beta1, 0, 0.999999),
    beta2: fields.number(defaults.beta2, 0, 0.999999),
    epsilon: fields.number(defaults.epsilon, 0, 1),
  };
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/** model.initFrom's prefix for another job's checkpoint in the coordinator's store, by that job's id, instead of a folder. */
export const INIT_FROM_STORE = 'store:';

const idField: Field<string> = {
  default: 'default',
  parse: (value, field) => {
    const id = check.string(value, field, 64);
    if (!ID_PATTERN.test(id)) check.oneOf(id, field, ['letters, digits, _ and - only']);
    return id;
  },
  jsonSchema: () => ({ type: 'string', maxLength: 64, pattern: ID_PATTERN.source, default: 'default' }),
};

/**
 * The job config as JSON Schema, derived from the schemas above, so the API's
 * description cannot drift from the parser: partial for what POST /api/jobs
 * takes, resolved for what a job shows.
 */
export function jobConfigJsonSchema(options: JsonSchemaOptions): JsonSchema {
  const common = jsonSchemaOf(
    { id: idField, dataset: fields.nested(datasetSchema), training: fields.nested(trainingSchema), output: fields.nested(outputSchema) },
    options,
  );
  const required = (keys: string[]) => (options.resolved ? { required: keys } : {});
  // The networks, their optimizers' defaults and the model's own keys depend on the model family (shared/models/).
  const optimizer = jsonSchemaOf(optimizerSchemaWith({ learningRate: 0, beta1: 0, beta2: 0, epsilon: 0 }), { ...options, defaults: false });
  const model = {
    type: 'object',
    additionalProperties: false,
    properties: {
      id: { type: 'string', enum: listModels().map((spec) => spec.id), default: 'dcgan' },
      config: { type: 'object', description: "the model family's own keys (width, latentDim, ...); absent ones take the family's defaults" },
      initFrom: {
        type: 'string',
        maxLength: 4096,
        description:
          "a folder with another job's checkpoint (its output folder) of the same model, or store:<job id> for that job's checkpoint in this coordinator's store (the JetStream one with --store nats): this job starts from its sampling weights (the EMA where kept) with fresh optimizers, instead of random ones. Read when the job starts fresh; a job's own checkpoint wins",
      },
    },
    ...required(['id', 'config']),
  };
  const optimizers = {
    type: 'object',
    description: "one optimizer per network of the model (generator and discriminator for GANs); absent keys take the family's defaults",
    additionalProperties: optimizer,
  };
  const rule = { type: 'string', enum: listRules().map((entry) => entry.id) };
  const perNetwork = { type: 'object', description: 'a rule per network of the model; networks left out use mean', additionalProperties: rule };
  const aggregator = options.resolved ? perNetwork : { oneOf: [{ ...rule, description: 'one rule for every network' }, perNetwork] };
  const training = (common.properties as Record<string, JsonSchema>).training;
  const trainingWithAggregator = {
    ...training,
    properties: { ...(training.properties as JsonSchema), aggregator },
    ...(options.resolved ? { required: [...(training.required as string[]), 'aggregator'] } : {}),
  };
  return {
    ...common,
    properties: { ...(common.properties as JsonSchema), training: trainingWithAggregator, model, optimizers },
    ...(options.resolved ? { required: [...(common.required as string[]), 'model', 'optimizers'] } : {}),
  };
}

/** Reads a job config: unknown keys are errors, absent keys take their defaults, the field at fault is named. */
export function parseJobConfig(raw: unknown): JobConfig {
  const input = raw === undefined ? {} : check.isRecord(raw) ? raw : undefined;
  if (!input) throw new TesseraError(ErrorCode.InvalidConfig, 'a job config is an object', { field: 'config' });
  const model = check.isRecord(input.model) ? input.model : input.model === undefined ? {} : undefined;
  if (!model) throw new TesseraError(ErrorCode.InvalidConfig, 'expected an object', { field: 'model' });
  for (const key of Object.keys(model)) {
    if (key !== 'id' && key !== 'config' && key !== 'initFrom')
      throw new TesseraError(ErrorCode.InvalidConfig, 'unknown key; known keys: id, config, initFrom', { field: `model.${key}` });
  }
  const initFrom = model.initFrom === undefined || model.initFrom === '' ? undefined : check.string(model.initFrom, 'model.initFrom', 4096);
  if (initFrom?.startsWith(INIT_FROM_STORE) && !ID_PATTERN.test(initFrom.slice(INIT_FROM_STORE.length))) {
    throw new TesseraError(ErrorCode.InvalidConfig, `${INIT_FROM_STORE} takes a job id (letters, digits, _ and - only), got ${JSON.stringify(initFrom)}`, {
      field: 'model.initFrom',
    });
  }
  const modelId = model.id === undefined ? 'dcgan' : model.id;
  if (typeof modelId !== 'string') throw new TesseraError(ErrorCode.InvalidConfig, 'expected a model id string', { field: 'model.id' });
  const spec = getModel(modelId, 'model.id');
  const optimizersSchema = Object.fromEntries(
    Object.entries(spec.networks).map(([network, defaults]) => [network, fields.nested(optimizerSchemaWith(defaults))]),
  ) as Schema<Record<string, OptimizerConfig>>;
  const schema: Schema<Omit<JobConfig, 'model' | 'dataset'> & { dataset: ParsedDataset }> = {
    id: idField,
    dataset: fields.nested(datasetSchema),
    training: fields.nested<TrainingConfig>({ ...trainingSchema, aggregator: aggregatorField(Object.keys(spec.networks)) }),
    optimizers: fields.nested(optimizersSchema),
    output: fields.nested(outputSchema),
  };
  const { model: _model, ...rest } = input;
  const resolved = parseConfig(schema, rest);
  // A local-mode update is a weight delta, not a gradient, and the coordinator's verification is off there.
  if (resolved.training.errorFeedback && resolved.training.mode === 'local')
    throw new TesseraError(ErrorCode.InvalidConfig, 'error feedback applies to sync mode; training.mode is local', { field: 'training.errorFeedback' });
  // The dataset's shape and classes (a folder's, as read now) decide the model's: a shape the family cannot make, or a
  // conditional family on unlabelled images, is refused here rather than failing on the first batch.
  const data = describeDataset(resolved.dataset);
  const folder = getDatasetSpec(data.id).folder === true;
  checkDataShape(spec, data, !folder ? 'dataset.id' : spec.classes > 0 && data.classes === 0 ? 'dataset.path' : 'dataset.shape');
  const dataset: DatasetConfig = { ...resolved.dataset, shape: data.imageShape };
  checkShardSize(dataset, data.count);
  const modelConfig = spec.parseConfig(model.config, 'model.config') as Record<string, unknown>;
  return { ...resolved, dataset, model: { id: spec.id, config: modelConfig, ...(initFrom ? { initFrom } : {}) } };
}

/** Refuses a folder dataset cut into shards over MAX_SHARD_BYTES, naming the least dataset.shards that fits. */
function checkShardSize(dataset: DatasetConfig, count: number | undefined): void {
  if (count === undefined) return;
  const perImage = dataset.shape[0] * dataset.shape[1] * dataset.shape[2] + SHARD_BYTES_PER_EXAMPLE;
  const trainCount = count * (1 - dataset.heldOutFraction);
  const perShard = Math.ceil(trainCount / dataset.shards) * perImage;
  if (perShard > MAX_SHARD_BYTES) {
    const least = Math.ceil((trainCount * perImage) / MAX_SHARD_BYTES);
    throw new TesseraError(
      ErrorCode.InvalidConfig,
      `${dataset.shards} shards of ${count} images hold ${perShard} bytes each, over ${MAX_SHARD_BYTES}: set at least ${least}`,
      {
        field: 'dataset.shards',
      },
    );
  }
}
