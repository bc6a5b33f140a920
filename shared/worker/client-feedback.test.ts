import { describe, expect, it } from 'vitest';
import { getCodec } from '../codec/index.ts';
import { arraysToTensors, tensorsToArrays } from '../codec/named.ts';
import { pack, unpack } from '../codec/packr.ts';
import { ErrorCode } from '../protocol/errors.ts';
import type { Assign, Update, Welcome } from '../protocol/messages.ts';
import type { WorkerTransportEvents, WorkerTransportFactory } from '../transport/worker.ts';
import { WorkerClient, type WorkerEvent } from './client.ts';
import type { StepCompute } from './compute.ts';

/**
 * The client's error feedback end to end, against a scripted coordinator: the assignment turns it on, an ack keeps the
 * residual for the next update and so does a refusal as a duplicate, any other refusal drops it, a welcome (a rejoin) starts
 * it over, an assignment without it sends the gradient alone.
 */

const shapes = { w: [256] };
/** int8 sends 0.003 beside a 1 as 0 (a step of 1/127); with the residual carried, the second update sends one step. */
const gradient = Float32Array.from({ length: 256 }, (_, i) => (i === 0 ? 1 : 0.003));

const compute: StepCompute = {
  shapes: async () => shapes,
  step: async () => ({ grads: { w: gradient.slice() }, losses: {}, numTensors: 0 }),
  dispose: () => {},
};

function scriptedCoordinator() {
  let events: WorkerTransportEvents | undefined;
  const updates: Update[] = [];
  let waiting: (() => void) | undefined;
  const factory: WorkerTransportFactory = () => ({
    connect(given) {
      events = given;
      setTimeout(() => events!.opened(), 0);
    },
    send(bytes) {
      const message = unpack(bytes) as { type: string };
      if (message.type !== 'update') return;
      updates.push(message as Update);
      waiting?.();
    },
    close: () => {},
  });
  const deliver = (message: object) => events!.frame(pack(message as Parameters<typeof pack>[0]));
  /** The `w` values of the next update the client sends after `assign`. */
  const updateFor = async (assign: Partial<Assign>) => {
    const sent = new Promise<void>((resolve) => (waiting = resolve));
    deliver({ ...ASSIGN, ...assign });
    await sent;
    // The next message comes on a later turn, as a transport delivers it, once the client finished this step.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const update = updates.at(-1)!;
    return tensorsToArrays(getCodec(update.codec).decode(update.tensors), shapes).w;
  };
  return { factory, deliver, updateFor };
}

const WELCOME: Welcome = {
  type: 'welcome',
  workerId: 'w1',
  jobId: 'job',
  model: { id: 'dcgan', config: {} },
  dataset: { id: 'mnist', imageShape: [28, 28, 1], classes: 10 },
  heartbeatMs: 60_000,
  resumeSecret: 'secret',
  dataToken: 'token',
};
const ASSIGN: Assign = {
  type: 'assign',
  jobId: 'job',
  round: 0,
  version: 0,
  weightsHash: 'h',
  sampleIndices: [0],
  shardIds: [0],
  seed: 1,
  codec: 'int8',
  deadlineMs: 60_000,
  errorFeedback: true,
};

/** A client of a scripted coordinator, welcomed and holding the weights `h`; `onEvent` sees its events. */
async function welcomed(onEvent?: (event: WorkerEvent) => void) {
  const coordinator = scriptedCoordinator();
  const client = new WorkerClient({
    kind: 'node',
    backend: 'cpu',
    device: 'test',
    transport: coordinator.factory,
    compute,
    loadBatch: () => ({ count: 1, images: new Float32Array(784), labels: new Int32Array(1) }) as never,
    ...(onEvent ? { onEvent } : {}),
  });
  client.start();
  await new Promise((resolve) => setTimeout(resolve, 5));
  coordinator.deliver(WELCOME);
  coordinator.deliver({
    type: 'weights',
    hash: 'h',
    version: 0,
    codec: 'f32',
    tensors: getCodec('f32')
      .encode(arraysToTensors({ w: new Float32Array(256) }, shapes))
      .slice(),
  });
  return { coordinator, client };
}

describe('WorkerClient with error feedback', () => {
  it(
    'carries the residual after an ack, starts over after a welcome, and sends the gradient alone when the assignment says so',
    { timeout: 5000 },
    async () => {
      const { coordinator, client } = await welcomed();

      expect((await coordinator.updateFor({ round: 0 }))[1]).toBe(0);
      coordinator.deliver({ type: 'ack', round: 0 });
      expect((await coordinator.updateFor({ round: 1 }))[1]).toBeCloseTo(1 / 127, 6);
      coordinator.deliver({ type: 'ack', round: 1 });
      // A rejoin: what was owed to the coordinator before is not carried.
      coordinator.deliver(WELCOME);
      expect((await coordinator.updateFor({ round: 2 }))[1]).toBe(0);
      coordinator.deliver({ type: 'ack', round: 2 });
      for (const round of [3, 4]) {
        expect((await coordinator.updateFor({ round, errorFeedback: undefined }))[1]).toBe(0);
        coordinator.deliver({ type: 'ack', round });
      }
      // A refused update's residual is dropped; a resent one refused as a duplicate was taken, so its residual is kept.
      expect((await coordinator.updateFor({ round: 5 }))[1]).toBe(0);
      coordinator.deliver({ type: 'reject', round: 5, code: ErrorCode.WrongRound, message: 'round 5 closed' });
      expect((await coordinator.updateFor({ round: 6 }))[1]).toBe(0);
      coordinator.deliver({ type: 'reject', round: 6, code: ErrorCode.DuplicateUpdate, message: 'already have it' });
      expect((await coordinator.updateFor({ round: 7 }))[1]).toBeCloseTo(1 / 127, 6);
      // An ack that comes with the next assignment (a round folded in the coordinator's fold thread) counts as one.
      await client.stop();
    },
  );

  it('takes the ack an assignment carries (a round the coordinator folds in its thread answers at its close) as an ack', { timeout: 5000 }, async () => {
    const acks: number[] = [];
    const { coordinator, client } = await welcomed((event) => {
      if (event.type === 'ack') acks.push(event.round);
    });
    await coordinator.updateFor({ round: 0 });
    await coordinator.updateFor({ round: 1, acknowledges: 0 });
    coordinator.deliver({ type: 'ack', round: 1 });
    await coordinator.updateFor({ round: 2 });
    expect(acks).toEqual([0, 1]);
    await client.stop();
  });
});
