import { describe, expect, expectTypeOf, it } from 'vitest';
import { ErrorCode, TesseraError } from './errors.ts';
import { bytes, int, num, oneOf, optional, str, trusted, withDefault, type FieldValue } from './fields.ts';
import { message, messageParser, object, type MessageOf } from './message-schema.ts';
import {
  COORDINATOR_MESSAGES,
  WORKER_MESSAGES,
  parseCoordinatorMessage,
  type Assign,
  type CoordinatorMessage,
  type Hello,
  type Update,
  type WelcomeDataset,
  type WorkerMessage,
} from './messages.ts';

const probe = message('probe', {
  id: str(8),
  count: int(1, 10),
  mode: oneOf(['fast', 'slow']),
  note: optional(str(16), { nullIsAbsent: true }),
  reason: withDefault(str(16), ''),
  timing: object({ ms: num(0) }),
});
type Probe = MessageOf<typeof probe>;
const good = { type: 'probe', id: 'a', count: 3, mode: 'fast', reason: 'r', timing: { ms: 1 } };

/** The TesseraError `parse` throws for `value`, as code and field. */
function refusal(parse: (value: unknown) => unknown, value: unknown): { code: ErrorCode; field: string | undefined } {
  try {
    parse(value);
  } catch (error) {
    expect(error).toBeInstanceOf(TesseraError);
    return { code: (error as TesseraError).code, field: (error as TesseraError).field };
  }
  throw new Error('expected parse to throw');
}

describe('a declared message', () => {
  it('parses a good value into the declared fields, leaving absent optional ones out and filling defaults', () => {
    expect(probe.parse(good)).toEqual(good);
    expect(probe.parse({ ...good, note: null, reason: undefined })).toStrictEqual({ ...good, reason: '' });
    expect(probe.parse({ ...good, note: 'n' }).note).toBe('n');
  });

  it('refuses an unknown key, a missing required key and a wrong type, naming the field', () => {
    expect(refusal(probe.parse, { ...good, extra: 1 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'extra' });
    expect(refusal(probe.parse, { ...good, id: undefined })).toEqual({ code: ErrorCode.InvalidMessage, field: 'id' });
    expect(refusal(probe.parse, { ...good, count: '3' })).toEqual({ code: ErrorCode.InvalidMessage, field: 'count' });
    expect(refusal(probe.parse, { ...good, count: 11 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'count' });
    expect(refusal(probe.parse, { ...good, mode: 'medium' })).toEqual({ code: ErrorCode.InvalidMessage, field: 'mode' });
    expect(refusal(probe.parse, { ...good, note: 5 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'note' });
  });

  it('nested objects name the path, and refuse unknown keys there too', () => {
    expect(refusal(probe.parse, { ...good, timing: 1 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'timing' });
    expect(refusal(probe.parse, { ...good, timing: {} })).toEqual({ code: ErrorCode.InvalidMessage, field: 'timing.ms' });
    expect(refusal(probe.parse, { ...good, timing: { ms: 1, gpuMs: 2 } })).toEqual({ code: ErrorCode.InvalidMessage, field: 'timing.gpuMs' });
  });

  it('checks unknown keys before fields, and fields in the order declared', () => {
    expect(refusal(probe.parse, { ...good, count: 'x', extra: 1 }).field).toBe('extra');
    expect(refusal(probe.parse, { ...good, id: 5, count: 'x' }).field).toBe('id');
  });

  it('refuses a non-object and another type', () => {
    expect(refusal(probe.parse, [good])).toEqual({ code: ErrorCode.InvalidMessage, field: '' });
    expect(refusal(probe.parse, { ...good, type: 'other' })).toEqual({ code: ErrorCode.UnknownMessageType, field: 'type' });
  });

  it('with unknownKeys: ignore, drops unknown keys instead of refusing them, and takes trusted fields as they come', () => {
    const lenient = message('lenient', { n: int(), blob: trusted<{ any: unknown }>() }, { unknownKeys: 'ignore' });
    expect(lenient.parse({ type: 'lenient', n: 1, blob: 'not checked', extra: 1 })).toEqual({ type: 'lenient', n: 1, blob: 'not checked' });
    expect(refusal(lenient.parse, { type: 'lenient', n: -1 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'n' });
  });

  it('derives its key list from the declared fields, type first', () => {
    expect(probe.keys).toEqual(['type', 'id', 'count', 'mode', 'note', 'reason', 'timing']);
    expect(message('empty', {}).keys).toEqual(['type']);
    for (const declared of [...WORKER_MESSAGES, ...COORDINATOR_MESSAGES]) expect(declared.keys).toEqual(['type', ...Object.keys(declared.fields)]);
    const hello = WORKER_MESSAGES.find((declared) => declared.type === 'hello')!;
    expect([...hello.keys].sort()).toEqual(
      ['type', 'protocol', 'kind', 'backend', 'device', 'jobId', 'workerId', 'name', 'samplesPerSecond', 'token', 'resumeSecret'].sort(),
    );
  });

  it('infers its type: `type` as a literal, required fields, optional ones as `?:`', () => {
    expectTypeOf<Probe>().toEqualTypeOf<{
      type: 'probe';
      id: string;
      count: number;
      mode: 'fast' | 'slow';
      note?: string;
      reason: string;
      timing: { ms: number };
    }>();
    expectTypeOf(probe.parse).returns.toEqualTypeOf<Probe>();
    expectTypeOf<FieldValue<ReturnType<typeof bytes>>>().toEqualTypeOf<Uint8Array>();
  });
});

describe('messageParser', () => {
  const other = message('other', { flag: optional(int()) });
  const parse = messageParser([probe, other]);

  it('dispatches on type, and its result is the union of the declared messages', () => {
    expect(parse(good)).toEqual(good);
    expect(parse({ type: 'other' })).toEqual({ type: 'other' });
    expectTypeOf(parse).returns.toEqualTypeOf<Probe | MessageOf<typeof other>>();
  });

  it('refuses a type it does not declare (also an Object.prototype name), and a non-object', () => {
    for (const type of ['nope', 'toString', '__proto__', 7, undefined]) {
      expect(refusal(parse, { type })).toEqual({ code: ErrorCode.UnknownMessageType, field: 'type' });
    }
    expect(refusal(parse, null).code).toBe(ErrorCode.InvalidMessage);
  });
});

describe('the protocol messages, as declared in messages.ts', () => {
  it('infer the shapes importers rely on', () => {
    expectTypeOf<Hello>().toEqualTypeOf<{
      type: 'hello';
      protocol: number;
      kind: 'node' | 'browser';
      backend: string;
      device: string;
      jobId?: string;
      workerId?: string;
      name?: string;
      token?: string;
      resumeSecret?: string;
      samplesPerSecond?: number;
    }>();
    expectTypeOf<Update['timing']>().toEqualTypeOf<{ computeMs: number; fetchMs: number }>();
    expectTypeOf<Update['workerTensors']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<WelcomeDataset>().toEqualTypeOf<{ id: string; imageShape: [number, number, number]; classes: number; shardHashes?: string[] }>();
    expectTypeOf<Assign['localSteps']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<WorkerMessage['type']>().toEqualTypeOf<'hello' | 'fetchWeights' | 'update' | 'heartbeat' | 'leave'>();
    expectTypeOf<CoordinatorMessage['type']>().toEqualTypeOf<'welcome' | 'assign' | 'weights' | 'ack' | 'reject' | 'error' | 'idle'>();
    expectTypeOf<Extract<CoordinatorMessage, { type: 'reject' }>>().toEqualTypeOf<{
      type: 'reject';
      round?: number;
      code: ErrorCode;
      message: string;
      field?: string;
    }>();
  });

  it('parseCoordinatorMessage checks the fields a worker acts on and drops keys it does not know', () => {
    const assign = {
      type: 'assign',
      jobId: 'j',
      round: 1,
      version: 1,
      weightsHash: 'ab',
      sampleIndices: [1, 2],
      shardIds: [0],
      seed: 7,
      codec: 'f32',
      deadlineMs: 1000,
    };
    expect(parseCoordinatorMessage({ ...assign, debug: true })).toEqual(assign);
    expect(refusal(parseCoordinatorMessage, { ...assign, seed: 2 ** 32 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'seed' });
    expect(refusal(parseCoordinatorMessage, { ...assign, localSteps: 0 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'localSteps' });
    expect(refusal(parseCoordinatorMessage, { ...assign, sampleIndices: [1.5] })).toEqual({ code: ErrorCode.InvalidMessage, field: 'sampleIndices[0]' });
    const welcome = {
      type: 'welcome',
      workerId: 'w',
      jobId: 'j',
      model: { id: 'dcgan', config: {} },
      dataset: { id: 'mnist', imageShape: [28, 28, 1], classes: 10 },
      heartbeatMs: 5000,
      resumeSecret: 's',
      dataToken: 't',
    };
    expect(parseCoordinatorMessage(welcome)).toEqual(welcome);
    expect(refusal(parseCoordinatorMessage, { ...welcome, dataset: { ...welcome.dataset, imageShape: [28, 0] } }).field).toBe('dataset.imageShape[1]');
    expect(refusal(parseCoordinatorMessage, { ...welcome, dataset: { ...welcome.dataset, shardHashes: 'x' } }).field).toBe('dataset.shardHashes');
    expect(refusal(parseCoordinatorMessage, { ...welcome, model: null }).field).toBe('model');
    expect(refusal(parseCoordinatorMessage, { ...welcome, dataToken: undefined }).field).toBe('dataToken');
    expect(refusal(parseCoordinatorMessage, { type: 'hello' })).toEqual({ code: ErrorCode.UnknownMessageType, field: 'type' });
  });
});
