import { describe, expect, it } from 'vitest';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { jobConfigJsonSchema, parseJobConfig } from './config.ts';

function refusal(raw: unknown): { code: ErrorCode; field: string | undefined } {
  try {
    parseJobConfig(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(TesseraError);
    return { code: (error as TesseraError).code, field: (error as TesseraError).field };
  }
  throw new Error('expected parseJobConfig to throw');
}

const invalidConfig = (field: string) => ({ code: ErrorCode.InvalidConfig, field });

describe('parseJobConfig defaults', () => {
  it('fills a complete config from nothing', () => {
    const config = parseJobConfig(undefined);
    expect(parseJobConfig({})).toEqual(config);
    expect(config).toEqual({
      id: 'default',
      model: { id: 'dcgan', config: { ...dcgan.defaults } },
      dataset: { id: 'mnist', heldOutFraction: 0.1, shards: 16, path: '', shape: [28, 28, 1] },
      training: {
        batchSize: 32,
        batching: 'throughput',
        maxWorkerShare: 0.5,
        maxBatchGrowth: 1.5,
        rounds: 0,
        minWorkers: 1,
        roundDeadlineMs: 60_000,
        deadline: 'adaptive',
        deadlineFloorMs: 2_000,
        lateUpdates: 'drop',
        stalenessDecay: 0.5,
        maxStaleness: 2,
        mode: 'sync',
        localSteps: 8,
        outerLearningRate: 0.7,
        outerMomentum: 0.9,
        seed: 1,
        codec: 'f32',
        errorFeedback: false,
        maxGradNorm: 1e4,
        foldThreadFrom: 32,
        aggregator: { generator: 'mean', discriminator: 'mean' },
        aggregation: { maxShare: 0.5, clipNorm: 0, trimFraction: 0.25, iterations: 5 },
        lrScaling: 'none',
        referenceBatch: 64,
        lrHalfLife: 0,
        verification: { duplicateShare: 0.05, tolerance: 1e-3, quarantineBelow: 0.3, releaseAbove: 0.6 },
      },
      optimizers: { generator: dcgan.networks.generator, discriminator: dcgan.networks.discriminator },
      output: { dir: 'runs', checkpointEvery: 10, sampleEvery: 25, exportEvery: 100, sampleCount: 64, evalEvery: 200, evalSamples: 500 },
    });
    expect(config.model.config).toEqual({
      latentDim: 64,
      width: 32,
      leak: 0.2,
      generatorNorm: 'layer',
      discriminatorNorm: 'spectral',
      powerIterations: 2,
      discriminatorDepth: 3,
      discriminatorWidth: 0,
      truncation: 0,
      generatorDepth: 4,
    });
  });

  it('hands out fresh defaults: changing one config does not change the next', () => {
    const first = parseJobConfig({});
    first.optimizers.generator.learningRate = 1;
    first.training.batchSize = 1;
    (first.model.config as { width: number }).width = 1;
    const second = parseJobConfig({});
    expect(second.optimizers.generator.learningRate).toBe(dcgan.networks.generator.learningRate);
    expect(second.training.batchSize).toBe(32);
    expect(second.model.config.width).toBe(32);
    expect(dcgan.networks.generator.learningRate).toBe(1e-3);
  });

  it('keeps given values and the defaults beside them', () => {
    const config = parseJobConfig({
      id: 'mnist-run_2',
      model: { config: { width: 8 } },
      training: { batchSize: 16, codec: 'int8' },
      dataset: { shards: 4 },
      output: { dir: '/tmp/x' },
    });
    expect(config.id).toBe('mnist-run_2');
    expect(config.model).toEqual({ id: 'dcgan', config: { ...dcgan.defaults, width: 8 } });
    expect(config.training).toMatchObject({ batchSize: 16, codec: 'int8', rounds: 0, seed: 1 });
    expect(config.dataset).toEqual({ id: 'mnist', heldOutFraction: 0.1, shards: 4, path: '', shape: [28, 28, 1] });
    expect(config.output).toMatchObject({ dir: '/tmp/x', checkpointEvery: 10 });
  });

  it('a partial optimizer override keeps the network’s other defaults and the other network', () => {
    const config = parseJobConfig({ optimizers: { generator: { learningRate: 1e-3 } } });
    expect(config.optimizers.generator).toEqual({ ...dcgan.networks.generator, learningRate: 1e-3 });
    expect(config.optimizers.discriminator).toEqual(dcgan.networks.discriminator);
  });

  it('training.aggregator: one rule for every network, or one per network with mean for those left out', () => {
    expect(parseJobConfig({ training: { aggregator: 'centered-clip' } }).training.aggregator).toEqual({
      generator: 'centered-clip',
      discriminator: 'centered-clip',
    });
    expect(parseJobConfig({ training: { aggregator: { discriminator: 'trimmed-mean' } } }).training.aggregator).toEqual({
      generator: 'mean',
      discriminator: 'trimmed-mean',
    });
    expect(parseJobConfig({ training: { aggregator: { generator: 'median', discriminator: 'mean' } } }).training.aggregator).toEqual({
      generator: 'median',
      discriminator: 'mean',
    });
    // The networks are the model's: a diffusion model has one.
    expect(parseJobConfig({ model: { id: 'ddpm' }, training: { aggregator: 'median' } }).training.aggregator).toEqual({ denoiser: 'median' });
    expect(parseJobConfig({ training: { aggregation: { trimFraction: 0.1 } } }).training.aggregation).toEqual({
      maxShare: 0.5,
      clipNorm: 0,
      trimFraction: 0.1,
      iterations: 5,
    });
  });

  it('round-trips: a resolved config parses to itself (as a checkpoint stores it)', () => {
    const config = parseJobConfig({
      training: { rounds: 5, aggregator: { generator: 'centered-clip' }, aggregation: { iterations: 3 } },
      optimizers: { discriminator: { beta1: 0.9 } },
    });
    expect(parseJobConfig(structuredClone(config))).toEqual(config);
    expect(parseJobConfig(JSON.parse(JSON.stringify(config)))).toEqual(config);
  });
});

describe('parseJobConfig refuses, naming the dotted field', () => {
  it('unknown keys at any depth', () => {
    expect(refusal({ trainig: {} })).toEqual(invalidConfig('trainig'));
    expect(refusal({ training: { batchsize: 8 } })).toEqual(invalidConfig('training.batchsize'));
    expect(refusal({ model: { config: { widht: 8 } } })).toEqual(invalidConfig('model.config.widht'));
    expect(refusal({ model: { name: 'dcgan' } })).toEqual(invalidConfig('model.name'));
    expect(refusal({ optimizers: { generator: { lr: 1e-3 } } })).toEqual(invalidConfig('optimizers.generator.lr'));
    expect(refusal({ optimizers: { critic: {} } })).toEqual(invalidConfig('optimizers.critic'));
    expect(refusal({ output: { directory: 'x' } })).toEqual(invalidConfig('output.directory'));
    expect(refusal({ dataset: { name: 'mnist' } })).toEqual(invalidConfig('dataset.name'));
  });

  it('values out of range or of the wrong type', () => {
    expect(refusal({ training: { batchSize: 0 } })).toEqual(invalidConfig('training.batchSize'));
    expect(refusal({ training: { batchSize: 2.5 } })).toEqual(invalidConfig('training.batchSize'));
    expect(refusal({ training: { batchSize: '32' } })).toEqual(invalidConfig('training.batchSize'));
    expect(refusal({ training: { maxWorkerShare: 1.5 } })).toEqual(invalidConfig('training.maxWorkerShare'));
    expect(refusal({ training: { maxWorkerShare: -0.1 } })).toEqual(invalidConfig('training.maxWorkerShare'));
    expect(refusal({ training: { maxBatchGrowth: 0.5 } })).toEqual(invalidConfig('training.maxBatchGrowth'));
    expect(refusal({ training: { codec: 'zip' } })).toEqual(invalidConfig('training.codec'));
    expect(refusal({ training: { errorFeedback: 'yes' } })).toEqual(invalidConfig('training.errorFeedback'));
    // Error feedback is for gradients (sync mode); a local-mode update is a weight delta.
    expect(refusal({ training: { errorFeedback: true, mode: 'local' } })).toEqual(invalidConfig('training.errorFeedback'));
    expect(parseJobConfig({ training: { errorFeedback: true, codec: 'int8' } }).training).toMatchObject({ errorFeedback: true, codec: 'int8' });
    expect(refusal({ training: { seed: -1 } })).toEqual(invalidConfig('training.seed'));
    expect(refusal({ training: { roundDeadlineMs: 99 } })).toEqual(invalidConfig('training.roundDeadlineMs'));
    expect(refusal({ training: { verification: { duplicateShare: 1.5 } } })).toEqual(invalidConfig('training.verification.duplicateShare'));
    expect(refusal({ training: { verification: { share: 0.1 } } })).toEqual(invalidConfig('training.verification.share'));
    expect(refusal({ dataset: { heldOutFraction: 2 } })).toEqual(invalidConfig('dataset.heldOutFraction'));
    expect(refusal({ dataset: { id: 'cifar' } })).toEqual(invalidConfig('dataset.id'));
    // Every registered dataset is a valid id.
    expect(parseJobConfig({ dataset: { id: 'fashion-mnist' }, model: { id: 'cdcgan' } }).dataset.id).toBe('fashion-mnist');
    expect(refusal({ dataset: { shards: 0 } })).toEqual(invalidConfig('dataset.shards'));
    expect(refusal({ optimizers: { discriminator: { beta1: 1 } } })).toEqual(invalidConfig('optimizers.discriminator.beta1'));
    expect(refusal({ optimizers: { generator: { learningRate: Number.NaN } } })).toEqual(invalidConfig('optimizers.generator.learningRate'));
    expect(refusal({ model: { config: { width: 0 } } })).toEqual(invalidConfig('model.config.width'));
    expect(refusal({ output: { sampleCount: 0 } })).toEqual(invalidConfig('output.sampleCount'));
    expect(refusal({ output: { evalEvery: -1 } })).toEqual(invalidConfig('output.evalEvery'));
    expect(refusal({ output: { evalSamples: 5 } })).toEqual(invalidConfig('output.evalSamples'));
  });

  it('an unknown aggregation rule, network or option, naming the field (and the known rules)', () => {
    expect(refusal({ training: { aggregator: 'krum' } })).toEqual(invalidConfig('training.aggregator'));
    expect(refusal({ training: { aggregator: { generator: 'krum' } } })).toEqual(invalidConfig('training.aggregator.generator'));
    expect(refusal({ training: { aggregator: { critic: 'mean' } } })).toEqual(invalidConfig('training.aggregator.critic'));
    expect(refusal({ training: { aggregator: { generator: 3 } } })).toEqual(invalidConfig('training.aggregator.generator'));
    expect(refusal({ training: { aggregator: 3 } })).toEqual(invalidConfig('training.aggregator'));
    expect(refusal({ training: { aggregator: ['mean'] } })).toEqual(invalidConfig('training.aggregator'));
    expect(refusal({ training: { aggregation: { maxShare: 0 } } })).toEqual(invalidConfig('training.aggregation.maxShare'));
    expect(refusal({ training: { aggregation: { maxShare: 1.5 } } })).toEqual(invalidConfig('training.aggregation.maxShare'));
    expect(refusal({ training: { aggregation: { clipNorm: -1 } } })).toEqual(invalidConfig('training.aggregation.clipNorm'));
    expect(refusal({ training: { aggregation: { trimFraction: 0.5 } } })).toEqual(invalidConfig('training.aggregation.trimFraction'));
    expect(refusal({ training: { aggregation: { iterations: 1.5 } } })).toEqual(invalidConfig('training.aggregation.iterations'));
    expect(refusal({ training: { aggregation: { tau: 1 } } })).toEqual(invalidConfig('training.aggregation.tau'));
    expect(() => parseJobConfig({ training: { aggregator: 'krum' } })).toThrow(/known: mean, trimmed-mean, median, centered-clip/);
  });

  it('an unknown model id is UnknownModel on model.id', () => {
    expect(refusal({ model: { id: 'nope' } })).toEqual({ code: ErrorCode.UnknownModel, field: 'model.id' });
    expect(refusal({ model: { id: 3 } })).toEqual(invalidConfig('model.id'));
  });

  it('sections that are not objects', () => {
    expect(refusal(null)).toEqual(invalidConfig('config'));
    expect(refusal([])).toEqual(invalidConfig('config'));
    expect(refusal('dcgan')).toEqual(invalidConfig('config'));
    expect(refusal({ model: 'dcgan' })).toEqual(invalidConfig('model'));
    expect(refusal({ training: 5 })).toEqual(invalidConfig('training'));
    expect(refusal({ optimizers: { generator: [] } })).toEqual(invalidConfig('optimizers.generator'));
    expect(refusal({ model: { config: 'wide' } })).toEqual(invalidConfig('model.config'));
  });

  it('a bad job id', () => {
    for (const id of ['', 'has space', '-leading-dash', 'a/b', '../up', 'x'.repeat(65)]) {
      expect(refusal({ id }), JSON.stringify(id)).toEqual(invalidConfig('id'));
    }
    expect(refusal({ id: 42 })).toEqual(invalidConfig('id'));
    expect(parseJobConfig({ id: 'A9_-z' }).id).toBe('A9_-z');
  });
});

describe('jobConfigJsonSchema', () => {
  type Leaf = { type?: string; enum?: string[]; minimum?: number; maximum?: number; maxLength?: number; pattern?: string; default?: unknown };
  /** The config value at a dotted path, nested as parseJobConfig reads it. */
  const at = (path: string[], value: unknown): Record<string, unknown> =>
    path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as Record<string, unknown>;
  const leaves = (schema: any, path: string[] = []): [string[], Leaf][] =>
    schema.type === 'object' && schema.properties
      ? Object.entries(schema.properties).flatMap(([key, inner]) => leaves(inner, [...path, key]))
      : [[path, schema]];
  const resolved = jobConfigJsonSchema({ resolved: true });
  // model.config and optimizers are per model family: their keys are checked by the family's own tests.
  const perModel = (path: string[]) => path[0] === 'model' || path[0] === 'optimizers' || (path[0] === 'training' && path[1] === 'aggregator');
  // dataset.shape's default is the dataset's own shape (tested with the images dataset below).
  const perDataset = (path: string[]) => path.join('.') === 'dataset.shape';
  const described = leaves(jobConfigJsonSchema({ resolved: false })).filter(([path]) => !perModel(path) && !perDataset(path));

  it('describes every key of a resolved config, with its default, and nothing else', () => {
    const defaults = parseJobConfig({});
    const keysOf = (schema: any): unknown =>
      schema.properties ? Object.fromEntries(Object.entries(schema.properties).map(([key, inner]) => [key, keysOf(inner)])) : true;
    const keysOfValue = (value: unknown): unknown =>
      value && typeof value === 'object' && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, keysOfValue(inner)]))
        : true;
    const expected = keysOfValue(defaults) as { training: Record<string, unknown> };
    // Per network, so per model family: the schema says "a rule per network", not which networks.
    expected.training.aggregator = true;
    // model.initFrom is optional: a resolved config has it only when it was given.
    expect(keysOf(resolved)).toEqual({ ...expected, model: { id: true, config: true, initFrom: true }, optimizers: true });
    expect(resolved.required).toEqual(expect.arrayContaining(Object.keys(defaults)));
    for (const [path, leaf] of described) expect(leaf.default, path.join('.')).toEqual(path.reduce<any>((value, key) => value[key], defaults));
  });

  it('gives every key a type, and the parser accepts exactly what the schema says at its bounds', () => {
    expect(described.length).toBeGreaterThan(25);
    for (const [path, leaf] of described) {
      const field = path.join('.');
      const refused = (value: unknown) => expect(refusal(at(path, value)), `${field} = ${JSON.stringify(value)}`).toEqual(invalidConfig(field));
      expect(leaf.type, field).toMatch(/^(string|integer|number|boolean)$/);
      // A folder dataset needs its folder too (dataset.path): tested with one below.
      const needsFolder = (value: string) => field === 'dataset.id' && value === 'images';
      for (const value of leaf.enum ?? []) if (!needsFolder(value)) expect(() => parseJobConfig(at(path, value)), `${field} = ${value}`).not.toThrow();
      if (leaf.enum) refused('not-one-of-them');
      if (leaf.minimum !== undefined) {
        expect(() => parseJobConfig(at(path, leaf.minimum)), `${field} = min`).not.toThrow();
        refused(leaf.minimum - 1);
      }
      if (leaf.maximum !== undefined) {
        expect(() => parseJobConfig(at(path, leaf.maximum)), `${field} = max`).not.toThrow();
        refused(leaf.maximum + Math.max(1, leaf.maximum));
      }
      if (leaf.type === 'integer') refused((leaf.minimum ?? 0) + 0.5);
      if (leaf.maxLength !== undefined) refused('a'.repeat(leaf.maxLength + 1));
      if (leaf.pattern !== undefined) refused('-not the pattern');
      if (leaf.type !== 'string') refused('a string');
    }
  });
});
