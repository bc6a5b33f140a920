import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pack, unpack } from '../shared/codec/packr.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { createRandom } from '../shared/training/random.ts';
import { CHECKPOINT_FILE, decodeCheckpoint, encodeCheckpoint, loadCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint.ts';
import { parseJobConfig } from './config.ts';
import { Job } from './job/job.ts';
import { CHECKPOINT_DIGEST_FILE } from './store/folder-store.ts';

// Small stand-ins named like the model's tensors: networkOf sends 'g_' to the generator, the rest to the discriminator.
const shapes: Record<string, number[]> = { g_a: [2, 3], g_b: [3], d_a: [2, 2, 1, 2], d_b: [1] };
const shapesOf = () => shapes;

function randomArray(length: number, seed: number): Float32Array {
  const next = createRandom(seed);
  return Float32Array.from({ length }, () => (next() / 2 ** 32 - 0.5) * 4);
}

/** A checkpoint mid-job: every counter, cursor, weight and moment is non-trivial. */
function makeCheckpoint(seed = 1): Checkpoint {
  const config = parseJobConfig({
    id: 'ckpt',
    dataset: { shards: 3 },
    training: { seed: 9, codec: 'f16', aggregator: { discriminator: 'centered-clip' }, aggregation: { trimFraction: 0.1 } },
    optimizers: { generator: { learningRate: 1e-3 } },
  });
  const weights: NamedArrays = Object.fromEntries(
    Object.entries(shapes).map(([name, shape], i) => [
      name,
      randomArray(
        shape.reduce((a, b) => a * b, 1),
        seed * 10 + i,
      ),
    ]),
  );
  const state = Job.initialState(dcgan, weights, config.dataset.shards);
  let salt = 100;
  for (const adam of Object.values(state.optimizers)) {
    adam.step = 7;
    for (const name of Object.keys(adam.firstMoment)) {
      adam.firstMoment[name] = randomArray(adam.firstMoment[name].length, seed * 1000 + salt++);
      adam.secondMoment[name] = randomArray(adam.secondMoment[name].length, seed * 1000 + salt++).map(Math.abs);
    }
  }
  Object.assign(state, { round: 7, version: 7, samplesSeen: 7 * 64 });
  state.shardCursors = [
    { epoch: 2, position: 5 },
    { epoch: 0, position: 0 },
    { epoch: 1, position: 12 },
  ];
  return { config, state, savedAt: '2024-01-02T03:04:05.000Z' };
}

function badCheckpoint(action: () => unknown): TesseraError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(TesseraError);
    expect((error as TesseraError).code).toBe(ErrorCode.BadCheckpoint);
    return error as TesseraError;
  }
  throw new Error('expected a BadCheckpoint error');
}

async function badCheckpointAsync(action: () => Promise<unknown>): Promise<TesseraError> {
  const error = await action().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  return badCheckpoint(() => {
    if (error) throw error;
  });
}

describe('checkpoint', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-checkpoint-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('has both networks’ Adam states over their own tensors', () => {
    const { state } = makeCheckpoint();
    expect(Object.keys(state.optimizers.generator.firstMoment)).toEqual(['g_a', 'g_b']);
    expect(Object.keys(state.optimizers.discriminator.firstMoment)).toEqual(['d_a', 'd_b']);
  });

  it('save then load gives back exactly what was saved', async () => {
    const checkpoint = makeCheckpoint();
    const original = structuredClone(checkpoint);
    const { path: file, bytes } = await saveCheckpoint(dir, checkpoint, shapes);
    expect(file).toBe(path.join(dir, CHECKPOINT_FILE));
    expect(fs.statSync(file).size).toBe(bytes);
    const loaded = await loadCheckpoint(dir, shapesOf);
    expect(loaded).toEqual(original);
    // Exact to the bit, tensor by tensor, as Float32Arrays.
    const bitsOf = (values: Float32Array) => Array.from(new Uint32Array(values.slice().buffer));
    for (const name of Object.keys(shapes)) {
      expect(loaded!.state.weights[name]).toBeInstanceOf(Float32Array);
      expect(bitsOf(loaded!.state.weights[name]), name).toEqual(bitsOf(original.state.weights[name]));
    }
    expect(loaded!.config).toEqual(checkpoint.config);
    expect(loaded!.config.optimizers.generator.learningRate).toBe(1e-3);
    expect(loaded!.config.training.aggregator).toEqual({ generator: 'mean', discriminator: 'centered-clip' });
    expect(loaded!.config.training.aggregation.trimFraction).toBe(0.1);
    expect(loaded!.state.optimizers.generator.step).toBe(7);
    expect(loaded!.state.shardCursors).toEqual(original.state.shardCursors);
  });

  it('a checkpoint written before training.aggregator existed loads with the defaults', () => {
    const map = decodeMap(encodeCheckpoint(makeCheckpoint(), shapes)) as { config: { training: Record<string, unknown> } };
    delete map.config.training.aggregator;
    delete map.config.training.aggregation;
    const loaded = decodeCheckpoint(pack(map), shapesOf);
    expect(loaded.config.training.aggregator).toEqual({ generator: 'mean', discriminator: 'mean' });
    expect(loaded.config.training.aggregation).toEqual(parseJobConfig({}).training.aggregation);
    expect(loaded.config.training.seed).toBe(9);
  });

  it('keeps the workers an admin banned; a checkpoint from before bans loads with none', () => {
    const checkpoint = makeCheckpoint();
    checkpoint.state.banned = ['w7-evil'];
    expect(decodeCheckpoint(encodeCheckpoint(checkpoint, shapes), shapesOf).state.banned).toEqual(['w7-evil']);
    const map = decodeMap(encodeCheckpoint(checkpoint, shapes)) as Record<string, unknown>;
    delete map.banned;
    expect(decodeCheckpoint(pack(map), shapesOf).state.banned).toBeUndefined();
    expect(() => decodeCheckpoint(pack({ ...map, banned: [7] }), shapesOf)).toThrow(
      expect.objectContaining({ code: ErrorCode.BadCheckpoint, field: 'banned[0]' }),
    );
  });

  it('a loaded state resumes a Job with the saved cursors', async () => {
    const checkpoint = makeCheckpoint();
    await saveCheckpoint(dir, checkpoint, shapes);
    const loaded = (await loadCheckpoint(dir, shapesOf))!;
    const job = new Job(loaded.config, shapes, loaded.state, 200);
    expect(job.shardSampler.cursors).toEqual(checkpoint.state.shardCursors);
    expect(job.state.version).toBe(7);
  });

  it('writes atomically: no temporary file is left, and an existing checkpoint is replaced whole', async () => {
    // An old, larger checkpoint: with in-place writes its tail would outlive the new one.
    const old = makeCheckpoint(1);
    old.config.output.dir = 'x'.repeat(1000);
    await saveCheckpoint(dir, old, shapes);
    const file = path.join(dir, CHECKPOINT_FILE);
    const oldInode = fs.statSync(file).ino;
    const oldSize = fs.statSync(file).size;

    const fresh = makeCheckpoint(2);
    const { bytes } = await saveCheckpoint(dir, fresh, shapes);
    expect(bytes).toBeLessThan(oldSize);
    expect(fs.readdirSync(dir).sort()).toEqual([CHECKPOINT_FILE, CHECKPOINT_DIGEST_FILE]);
    expect(fs.statSync(file).size).toBe(bytes);
    // A new file renamed over the old one, not the old file rewritten.
    expect(fs.statSync(file).ino).not.toBe(oldInode);
    expect(await loadCheckpoint(dir, shapesOf)).toEqual(fresh);
  });

  it('creates the directory when it does not exist yet', async () => {
    const nested = path.join(dir, 'runs', 'job');
    await saveCheckpoint(nested, makeCheckpoint(), shapes);
    expect(fs.readdirSync(nested).sort()).toEqual([CHECKPOINT_FILE, CHECKPOINT_DIGEST_FILE]);
  });

  it('a missing checkpoint (file or folder) is undefined', async () => {
    expect(await loadCheckpoint(dir, shapesOf)).toBeUndefined();
    expect(await loadCheckpoint(path.join(dir, 'nothing-here'), shapesOf)).toBeUndefined();
  });

  it('a truncated file is BadCheckpoint', async () => {
    const bytes = encodeCheckpoint(makeCheckpoint(), shapes);
    for (const length of [1, 10, Math.floor(bytes.length / 2), bytes.length - 1]) {
      fs.writeFileSync(path.join(dir, CHECKPOINT_FILE), bytes.subarray(0, length));
      await badCheckpointAsync(() => loadCheckpoint(dir, shapesOf));
    }
  });

  it('random bytes are BadCheckpoint', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = createRandom(seed);
      const bytes = Uint8Array.from({ length: 64 + seed * 13 }, () => next() & 0xff);
      badCheckpoint(() => decodeCheckpoint(bytes, shapesOf));
    }
    badCheckpoint(() => decodeCheckpoint(new Uint8Array(0), shapesOf));
  });

  it('a msgpack file of another format is BadCheckpoint naming the field', () => {
    expect(badCheckpoint(() => decodeCheckpoint(pack({ format: 'something-else', formatVersion: 1 }), shapesOf)).field).toBe('format');
    expect(badCheckpoint(() => decodeCheckpoint(pack({ hello: 'world' }), shapesOf)).field).toBe('format');
    expect(badCheckpoint(() => decodeCheckpoint(pack([1, 2, 3]), shapesOf)).field).toBe('checkpoint');
    expect(badCheckpoint(() => decodeCheckpoint(pack('tessera-checkpoint'), shapesOf)).field).toBe('checkpoint');
  });

  it('a right-format file with a wrong version, field or tensor is BadCheckpoint naming the field', () => {
    const good = encodeCheckpoint(makeCheckpoint(), shapes);
    const raw = () => structuredClone(decodeMap(good));
    const withField = (change: (map: Record<string, any>) => void) => {
      const map = raw();
      change(map);
      return pack(map);
    };
    expect(
      badCheckpoint(() =>
        decodeCheckpoint(
          withField((map) => (map.formatVersion = 2)),
          shapesOf,
        ),
      ).field,
    ).toBe('format');
    expect(
      badCheckpoint(() =>
        decodeCheckpoint(
          withField((map) => (map.round = -1)),
          shapesOf,
        ),
      ).field,
    ).toBe('round');
    expect(
      badCheckpoint(() =>
        decodeCheckpoint(
          withField((map) => (map.shardCursors = {})),
          shapesOf,
        ),
      ).field,
    ).toBe('shardCursors');
    expect(
      badCheckpoint(() =>
        decodeCheckpoint(
          withField((map) => (map.shardCursors[1].epoch = 'x')),
          shapesOf,
        ),
      ).field,
    ).toBe('shardCursors[1].epoch');
    expect(
      badCheckpoint(() =>
        decodeCheckpoint(
          withField((map) => (map.config.training.batchsize = 3)),
          shapesOf,
        ),
      ).field,
    ).toBe('training.batchsize');
    expect(
      badCheckpoint(() =>
        decodeCheckpoint(
          withField((map) => (map.config.training.aggregator.generator = 'gone')),
          shapesOf,
        ),
      ).field,
    ).toBe('training.aggregator.generator');
    expect(
      badCheckpoint(() =>
        decodeCheckpoint(
          withField((map) => (map.weights = new Uint8Array([1, 2]))),
          shapesOf,
        ),
      ).code,
    ).toBe(ErrorCode.BadCheckpoint);
    // The model's shapes changed since the checkpoint was written.
    const otherShapes = () => ({ ...shapes, g_a: [3, 2] });
    expect(badCheckpoint(() => decodeCheckpoint(good, otherShapes)).field).toBe('weights.g_a.shape');
    const extraTensor = () => ({ ...shapes, g_c: [1] });
    expect(badCheckpoint(() => decodeCheckpoint(good, extraTensor)).field).toBe('weights.g_c');
  });
});

/** The plain map inside checkpoint bytes, with byte strings copied, for tests that corrupt one field. */
function decodeMap(bytes: Uint8Array): Record<string, unknown> {
  // Byte strings are views of `bytes` (Buffers in Node); plain copies survive structuredClone and repacking.
  const copyBytes = (value: unknown): unknown => {
    if (value instanceof Uint8Array) return new Uint8Array(value);
    if (Array.isArray(value)) return value.map(copyBytes);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, copyBytes(inner)]));
    return value;
  };
  return copyBytes(unpack(bytes)) as Record<string, unknown>;
}
