import { expect } from 'vitest';
import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors } from '../../shared/codec/named.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { dcgan } from '../../shared/models/gan/dcgan.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Update } from '../../shared/protocol/messages.ts';
import { parseJobConfig } from '../config.ts';
import { Job } from './job.ts';

/* A Job small enough to read: the job's unit tests share it. */
// Two tiny tensors, one per network, stand in for the model: the Job only needs names and shapes.
export const shapes = { g_w: [2, 3], d_w: [4] };

export function makeJob(training: Record<string, unknown> = {}) {
  const config = parseJobConfig({ id: 'unit', training: { batchSize: 4, maxGradNorm: 100, ...training }, dataset: { shards: 4 } });
  const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([1, 1, 1, 1]) };
  return new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
}

export function grads(scale = 1): NamedArrays {
  return { g_w: new Float32Array([1, -1, 1, -1, 1, -1]).map((v) => v * scale), d_w: new Float32Array([0.5, 0.5, -0.5, -0.5]).map((v) => v * scale) };
}

export function update(job: Job, overrides: Partial<Update> = {}, tensors: NamedArrays = grads()): Update {
  return {
    type: 'update',
    jobId: 'unit',
    round: job.current!.round,
    version: job.current!.version,
    weightsHash: [...job.current!.assignments.values()][0].message.weightsHash,
    samples: 4,
    codec: 'f32',
    tensors: getCodec('f32').encode(arraysToTensors(tensors, shapes)),
    losses: { d: 1, g: 2 },
    timing: { computeMs: 10, fetchMs: 1 },
    ...overrides,
  };
}

export function rejection(action: () => unknown): { code: ErrorCode; field: string | undefined } {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(TesseraError);
    return { code: (error as TesseraError).code, field: (error as TesseraError).field };
  }
  throw new Error('expected a rejection');
}

export const workers = [
  { id: 'a', batchSize: 4 },
  { id: 'b', batchSize: 4 },
];

export function makeJobLike(job: Job): Job {
  const copy = makeJob();
  copy.current = {
    ...job.current!,
    assignments: new Map(job.current!.assignments),
    updates: new Map(),
    failures: new Map(),
  };
  return copy;
}
