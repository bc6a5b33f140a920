/**
 * Fakes for the coordinator's unit tests (hub, metrics): a channel that
 * records what is sent, a trainer with only what the runner touches, and
 * updates that fit the tiny model below. Not imported by any non-test code.
 */
import type { JobStore } from './store/job-store.ts';
import { getCodec } from '../shared/codec/index.ts';
import { arraysToTensors } from '../shared/codec/named.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import type { Trainer } from '../shared/models/types.ts';
import type { Assign, CoordinatorMessage } from '../shared/protocol/messages.ts';
import { parseJobConfig } from './config.ts';
import { Hub, type HubOptions } from './hub.ts';
import { Job } from './job/job.ts';
import { JobRunner } from './job/runner.ts';
import type { WorkerChannel } from '../shared/transport/coordinator.ts';

/** Two tiny tensors named like the model's (g_ for the generator, the rest for the discriminator). */
export const shapes: Record<string, number[]> = { g_w: [2, 3], d_w: [4] };

/** Records what the hub sends and whether it closed the connection. */
export class FakeChannel implements WorkerChannel {
  static count = 0;
  readonly id = `fake-${++FakeChannel.count}`;
  readonly transport = 'fake';
  readonly remote = 'test';
  readonly address: string;
  /** The job a carrier bound this connection to (as NATS subjects do); none by default. */
  jobId?: string;
  readonly sent: CoordinatorMessage[] = [];
  readonly closed: string[] = [];
  /** The message limits the hub set, newest last. */
  readonly limits: number[] = [];
  constructor(address = 'test') {
    this.address = address;
  }
  limitMessages(maxBytes: number): void {
    this.limits.push(maxBytes);
  }
  send(message: CoordinatorMessage): void {
    this.sent.push(message);
  }
  close(reason: string): void {
    this.closed.push(reason);
  }
  last(): CoordinatorMessage | undefined {
    return this.sent.at(-1);
  }
  /** The last ack or reject: the answer to an update, which the next round's assignment may follow at once. */
  answer(): CoordinatorMessage | undefined {
    return [...this.sent].reverse().find((message) => message.type === 'ack' || message.type === 'reject');
  }
  ofType<T extends CoordinatorMessage['type']>(type: T): Extract<CoordinatorMessage, { type: T }>[] {
    return this.sent.filter((message): message is Extract<CoordinatorMessage, { type: T }> => message.type === type);
  }
  assigns(): Assign[] {
    return this.ofType('assign');
  }
  workerId(): string {
    const welcome = this.ofType('welcome')[0];
    if (!welcome) throw new Error('not welcomed');
    return welcome.workerId;
  }
}

/** A trainer with only what the runner touches (shapes, setWeights, sample); the rest is never called in these tests. */
export function fakeTrainer(): Trainer {
  const unused = (): never => {
    throw new Error('not used by the runner');
  };
  return {
    shapes,
    initialWeights: unused,
    setWeights: () => {},
    drawNoise: unused,
    lossAndGrads: unused,
    sample: async (count) => ({ images: new Float32Array(count * 28 * 28), labels: new Int32Array(count).fill(-1) }),
    exportModel: unused,
    dispose: () => {},
  };
}

/** A valid update for an assignment, with fields to override for the bad cases. */
export function updateFor(assign: Assign, overrides: Record<string, unknown> = {}) {
  const grads: NamedArrays = { g_w: new Float32Array([0.1, -0.1, 0.1, -0.1, 0.1, -0.1]), d_w: new Float32Array([0.2, 0.2, -0.2, -0.2]) };
  return {
    type: 'update',
    jobId: assign.jobId,
    round: assign.round,
    version: assign.version,
    weightsHash: assign.weightsHash,
    samples: assign.sampleIndices.length,
    codec: 'f32',
    tensors: getCodec('f32').encode(arraysToTensors(grads, shapes)).slice(),
    losses: { d: 1, g: 2 },
    timing: { computeMs: 100, fetchMs: 1 },
    ...overrides,
  };
}

/** A hub with one tiny job ('unit', 4 samples a round, one worker needed, `training` on top) whose outputs go to `dir` far in the future. */
export function testHub(
  dir: string,
  options: Partial<HubOptions> = {},
  training: Record<string, unknown> = {},
  store?: JobStore,
): { hub: Hub; runner: JobRunner } {
  const config = parseJobConfig({
    id: 'unit',
    training: { batchSize: 4, minWorkers: 1, ...training },
    dataset: { shards: 4 },
    output: { dir, checkpointEvery: 1_000_000, sampleEvery: 1_000_000, exportEvery: 1_000_000 },
  });
  const weights: NamedArrays = { g_w: new Float32Array([1, 2, 3, 4, 5, 6]), d_w: new Float32Array([-1, -2, -3, -4]) };
  const job = new Job(config, shapes, Job.initialState(dcgan, weights, config.dataset.shards), 100);
  const runner = new JobRunner(job, fakeTrainer(), Date.now, {}, undefined, store);
  const hub = new Hub({ defaultJobId: 'unit', heartbeatMs: 5000, ...options });
  hub.addRunner(runner);
  return { hub, runner };
}
