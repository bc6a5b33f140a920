import { getCodec } from '../shared/codec/index.ts';
import { arraysToTensors, tensorsToArrays } from '../shared/codec/named.ts';
import { pack, unpack } from '../shared/codec/packr.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import * as check from '../shared/protocol/check.ts';
import { ErrorCode, TesseraError, invalid } from '../shared/protocol/errors.ts';
import { LIMITS } from '../shared/protocol/messages.ts';
import { parseJobConfig } from './config.ts';
import type { JobConfig } from '../shared/api/job-config.ts';
import type { JobState } from './job/state.ts';
import { CHECKPOINT_FILE, FolderStore } from './store/folder-store.ts';

const FORMAT = 'tessera-checkpoint';
const FORMAT_VERSION = 1;
export { CHECKPOINT_FILE };

export interface Checkpoint {
  config: JobConfig;
  state: JobState;
  savedAt: string;
}

function encodeArrays(arrays: NamedArrays, shapes: Record<string, number[]>, names: readonly string[]): Uint8Array {
  const subset = Object.fromEntries(names.map((name) => [name, shapes[name]]));
  return getCodec('f32').encode(arraysToTensors(arrays, subset));
}

/** The checkpoint as bytes: config, counters, weights and optimizer moments (lossless). */
export function encodeCheckpoint(checkpoint: Checkpoint, shapes: Record<string, number[]>): Uint8Array {
  const { state } = checkpoint;
  return pack({
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    savedAt: checkpoint.savedAt,
    config: checkpoint.config,
    round: state.round,
    version: state.version,
    samplesSeen: state.samplesSeen,
    shardCursors: state.shardCursors,
    weights: encodeArrays(state.weights, shapes, Object.keys(shapes)),
    outerMomentum: state.outerMomentum ? encodeArrays(state.outerMomentum, shapes, Object.keys(shapes)) : null,
    ema: state.ema ? encodeArrays(state.ema, shapes, Object.keys(shapes)) : null,
    banned: state.banned ?? [],
    dataHash: state.dataHash ?? null,
    optimizers: Object.fromEntries(
      Object.entries(state.optimizers).map(([network, adam]) => {
        const names = Object.keys(adam.firstMoment);
        return [
          network,
          { step: adam.step, firstMoment: encodeArrays(adam.firstMoment, shapes, names), secondMoment: encodeArrays(adam.secondMoment, shapes, names) },
        ];
      }),
    ),
  });
}

/** Reads checkpoint bytes back; `shapesOf` gives the model's tensor shapes for the stored config. */
export function decodeCheckpoint(bytes: Uint8Array, shapesOf: (config: JobConfig) => Record<string, number[]>): Checkpoint {
  try {
    const raw = check.record(unpack(bytes), 'checkpoint');
    if (raw.format !== FORMAT || raw.formatVersion !== FORMAT_VERSION) {
      throw new TesseraError(ErrorCode.BadCheckpoint, `not a ${FORMAT} v${FORMAT_VERSION} file`, { field: 'format' });
    }
    const config = parseJobConfig(raw.config);
    const shapes = shapesOf(config);
    // Weights hold every tensor; each optimizer holds its own network's, so it is checked against the tensors it names.
    const decode = (value: unknown, field: string, requireAll: boolean): NamedArrays => {
      const tensors = getCodec('f32').decode(check.bytes(value, field, 1 << 30));
      const names = requireAll ? Object.keys(shapes) : Object.keys(tensors);
      return tensorsToArrays(tensors, Object.fromEntries(names.map((name) => [name, shapes[name] ?? []])), field);
    };
    const optimizers = check.record(raw.optimizers, 'optimizers');
    const cursors: unknown[] = Array.isArray(raw.shardCursors) ? raw.shardCursors : invalid('shardCursors', 'an array', raw.shardCursors);
    const state: JobState = {
      round: check.integer(raw.round, 'round'),
      version: check.integer(raw.version, 'version'),
      samplesSeen: check.integer(raw.samplesSeen, 'samplesSeen'),
      shardCursors: cursors.map((cursor: unknown, i: number) => {
        const value = check.record(cursor, `shardCursors[${i}]`);
        return { epoch: check.integer(value.epoch, `shardCursors[${i}].epoch`), position: check.integer(value.position, `shardCursors[${i}].position`) };
      }),
      weights: decode(raw.weights, 'weights', true),
      ...(raw.outerMomentum ? { outerMomentum: decode(raw.outerMomentum, 'outerMomentum', true) } : {}),
      ...(raw.ema ? { ema: decode(raw.ema, 'ema', true) } : {}),
      ...(Array.isArray(raw.banned) && raw.banned.length > 0
        ? { banned: raw.banned.map((id: unknown, i: number) => check.string(id, `banned[${i}]`, LIMITS.maxIdLength)) }
        : {}),
      ...(raw.dataHash != null ? { dataHash: check.string(raw.dataHash, 'dataHash', 128) } : {}),
      optimizers: Object.fromEntries(
        Object.entries(optimizers).map(([network, value]) => {
          const adam = check.record(value, `optimizers.${network}`);
          return [
            network,
            {
              step: check.integer(adam.step, `optimizers.${network}.step`),
              firstMoment: decode(adam.firstMoment, `optimizers.${network}.firstMoment`, false),
              secondMoment: decode(adam.secondMoment, `optimizers.${network}.secondMoment`, false),
            },
          ];
        }),
      ),
    };
    if (state.shardCursors.length !== config.dataset.shards) {
      invalid('shardCursors', `${config.dataset.shards} shard positions (dataset.shards)`, `${state.shardCursors.length}`);
    }
    const networks = Object.keys(config.optimizers).sort();
    if (Object.keys(state.optimizers).sort().join() !== networks.join())
      invalid('optimizers', `the networks ${networks.join(', ')}`, Object.keys(state.optimizers).join(', '));
    return { config, state, savedAt: String(raw.savedAt) };
  } catch (error) {
    if (error instanceof TesseraError && error.code === ErrorCode.BadCheckpoint) throw error;
    throw new TesseraError(ErrorCode.BadCheckpoint, `unreadable checkpoint: ${(error as Error).message}`, {
      cause: error,
      field: (error as TesseraError).field,
    });
  }
}

/**
 * Writes the checkpoint into a folder, atomically (FolderStore: a temporary
 * file, flushed, renamed over the old one), with its digest beside it.
 */
export async function saveCheckpoint(dir: string, checkpoint: Checkpoint, shapes: Record<string, number[]>): Promise<{ path: string; bytes: number }> {
  const store = new FolderStore(dir);
  const bytes = encodeCheckpoint(checkpoint, shapes);
  await store.saveCheckpoint(bytes);
  return { path: store.checkpointLocation, bytes: bytes.byteLength };
}

/** The last checkpoint in a job's folder, its digest checked; undefined when it has none yet. */
export async function loadCheckpoint(dir: string, shapesOf: (config: JobConfig) => Record<string, number[]>): Promise<Checkpoint | undefined> {
  const bytes = await new FolderStore(dir).loadCheckpoint();
  return bytes && decodeCheckpoint(bytes, shapesOf);
}
