import { describe, expect, it } from 'vitest';
import { pack, unpack } from '../codec/packr.ts';
import { ErrorCode, TesseraError, describe as describeValue, isTesseraError } from './errors.ts';
import { LIMITS, PROTOCOL_VERSION, parseWorkerMessage } from './messages.ts';

const hello = { type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'x86_64, 4 cores' };
const update = {
  type: 'update',
  jobId: 'job-1',
  round: 3,
  version: 3,
  weightsHash: 'ab'.repeat(32),
  samples: 32,
  codec: 'f32',
  tensors: new Uint8Array([1, 2, 3, 4]),
  losses: { d: 1.25, g: 0.75 },
  timing: { computeMs: 120, fetchMs: 4 },
};

/** The TesseraError parseWorkerMessage throws for `value`, as code and field. */
function refusal(value: unknown): { code: ErrorCode; field: string | undefined } {
  try {
    parseWorkerMessage(value);
  } catch (error) {
    expect(error).toBeInstanceOf(TesseraError);
    return { code: (error as TesseraError).code, field: (error as TesseraError).field };
  }
  throw new Error('expected parseWorkerMessage to throw');
}

/** The message as it arrives: packed and unpacked, so byte strings are Buffers at an offset as in Node. */
const overTheWire = (message: unknown) => unpack(pack(message).slice());

describe('parseWorkerMessage accepts good messages', () => {
  it('hello, minimal and with every optional field', () => {
    expect(parseWorkerMessage(overTheWire(hello))).toEqual(hello);
    const full = { ...hello, kind: 'browser', jobId: 'j', workerId: 'w1', name: 'Firefox on Linux', samplesPerSecond: 12.5, token: 's3cret' };
    expect(parseWorkerMessage(overTheWire(full))).toEqual(full);
  });

  it('hello with null optional strings treats them as absent', () => {
    expect(parseWorkerMessage({ ...hello, jobId: null, workerId: null })).toEqual(hello);
  });

  it('update, with its tensors as bytes', () => {
    const parsed = parseWorkerMessage(overTheWire(update));
    expect(parsed.type).toBe('update');
    if (parsed.type !== 'update') return;
    expect(Array.from(parsed.tensors)).toEqual([1, 2, 3, 4]);
    expect({ ...parsed, tensors: undefined }).toEqual({ ...update, tensors: undefined });
  });

  it('fetchWeights, heartbeat and leave (with and without a reason)', () => {
    expect(parseWorkerMessage(overTheWire({ type: 'fetchWeights', hash: 'ab'.repeat(32) }))).toEqual({ type: 'fetchWeights', hash: 'ab'.repeat(32) });
    expect(parseWorkerMessage(overTheWire({ type: 'heartbeat' }))).toEqual({ type: 'heartbeat' });
    expect(parseWorkerMessage(overTheWire({ type: 'leave', reason: 'shutting down' }))).toEqual({ type: 'leave', reason: 'shutting down' });
    expect(parseWorkerMessage({ type: 'leave' })).toEqual({ type: 'leave', reason: '' });
  });
});

describe('parseWorkerMessage refuses bad messages, naming the code and field', () => {
  it('non-objects', () => {
    for (const value of [null, undefined, [], [hello], 42, 'hello', true, new Uint8Array([1, 2])]) {
      expect(refusal(value).code, describeValue(value)).toBe(ErrorCode.InvalidMessage);
    }
  });

  it('an unknown or missing type', () => {
    expect(refusal({ type: 'weights' })).toEqual({ code: ErrorCode.UnknownMessageType, field: 'type' });
    expect(refusal({ type: 'toString' })).toEqual({ code: ErrorCode.UnknownMessageType, field: 'type' });
    expect(refusal({ type: 7 })).toEqual({ code: ErrorCode.UnknownMessageType, field: 'type' });
    expect(refusal({})).toEqual({ code: ErrorCode.UnknownMessageType, field: 'type' });
  });

  it('hello: wrong protocol, unknown key, bad fields', () => {
    expect(refusal({ ...hello, protocol: PROTOCOL_VERSION + 1 })).toEqual({ code: ErrorCode.ProtocolMismatch, field: 'protocol' });
    expect(refusal({ ...hello, protocol: 0 })).toEqual({ code: ErrorCode.ProtocolMismatch, field: 'protocol' });
    expect(refusal({ ...hello, protocol: '1' })).toEqual({ code: ErrorCode.InvalidMessage, field: 'protocol' });
    expect(refusal({ ...hello, extra: 1 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'extra' });
    expect(refusal({ ...hello, kind: 'phone' })).toEqual({ code: ErrorCode.InvalidMessage, field: 'kind' });
    expect(refusal({ ...hello, backend: undefined })).toEqual({ code: ErrorCode.InvalidMessage, field: 'backend' });
    expect(refusal({ ...hello, workerId: 'w'.repeat(LIMITS.maxIdLength + 1) })).toEqual({ code: ErrorCode.InvalidMessage, field: 'workerId' });
    expect(refusal({ ...hello, jobId: 5 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'jobId' });
    expect(refusal({ ...hello, samplesPerSecond: -1 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'samplesPerSecond' });
    expect(refusal({ ...hello, samplesPerSecond: Number.POSITIVE_INFINITY })).toEqual({ code: ErrorCode.InvalidMessage, field: 'samplesPerSecond' });
  });

  it('update: each bad field is named', () => {
    expect(refusal({ ...update, samples: 0 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'samples' });
    expect(refusal({ ...update, samples: 1.5 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'samples' });
    expect(refusal({ ...update, round: -1 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'round' });
    expect(refusal({ ...update, version: '3' })).toEqual({ code: ErrorCode.InvalidMessage, field: 'version' });
    expect(refusal({ ...update, tensors: [1, 2, 3] })).toEqual({ code: ErrorCode.InvalidMessage, field: 'tensors' });
    expect(refusal({ ...update, tensors: new Float32Array(4) })).toEqual({ code: ErrorCode.InvalidMessage, field: 'tensors' });
    expect(refusal({ ...update, tensors: 'AQIDBA==' })).toEqual({ code: ErrorCode.InvalidMessage, field: 'tensors' });
    expect(refusal({ ...update, losses: { d: Number.NaN } })).toEqual({ code: ErrorCode.InvalidMessage, field: 'losses.d' });
    expect(refusal({ ...update, losses: { g: 1, d: Number.POSITIVE_INFINITY } })).toEqual({ code: ErrorCode.InvalidMessage, field: 'losses.d' });
    expect(refusal({ ...update, losses: [1] })).toEqual({ code: ErrorCode.InvalidMessage, field: 'losses' });
    expect(refusal({ ...update, timing: undefined })).toEqual({ code: ErrorCode.InvalidMessage, field: 'timing' });
    expect(refusal({ ...update, timing: { computeMs: 1 } })).toEqual({ code: ErrorCode.InvalidMessage, field: 'timing.fetchMs' });
    expect(refusal({ ...update, timing: { computeMs: 1, fetchMs: 1, gpuMs: 1 } })).toEqual({ code: ErrorCode.InvalidMessage, field: 'timing.gpuMs' });
    expect(refusal({ ...update, codec: undefined })).toEqual({ code: ErrorCode.InvalidMessage, field: 'codec' });
    // An update must name the weights it was computed from.
    expect(refusal({ ...update, weightsHash: undefined })).toEqual({ code: ErrorCode.InvalidMessage, field: 'weightsHash' });
    expect(refusal({ ...update, weightsHash: 'x'.repeat(129) })).toEqual({ code: ErrorCode.InvalidMessage, field: 'weightsHash' });
    expect(refusal({ ...update, extra: true })).toEqual({ code: ErrorCode.InvalidMessage, field: 'extra' });
  });

  it('update: the wrong checks survive msgpack (NaN losses, bytes as arrays)', () => {
    expect(refusal(overTheWire({ ...update, losses: { d: Number.NaN } }))).toEqual({ code: ErrorCode.InvalidMessage, field: 'losses.d' });
    expect(refusal(overTheWire({ ...update, tensors: [1, 2] }))).toEqual({ code: ErrorCode.InvalidMessage, field: 'tensors' });
  });

  it('update: tensors above the byte limit are TooLarge', () => {
    // A stand-in that reports a length over the limit, so the test need not allocate 256 MB.
    const huge = new Uint8Array(8);
    Object.defineProperty(huge, 'byteLength', { value: LIMITS.maxTensorBytes + 1 });
    expect(refusal({ ...update, tensors: huge })).toEqual({ code: ErrorCode.TooLarge, field: 'tensors' });
    const atLimit = new Uint8Array(8);
    Object.defineProperty(atLimit, 'byteLength', { value: LIMITS.maxTensorBytes });
    expect(parseWorkerMessage({ ...update, tensors: atLimit }).type).toBe('update');
  });

  it('fetchWeights and leave: bad fields', () => {
    expect(refusal({ type: 'fetchWeights' })).toEqual({ code: ErrorCode.InvalidMessage, field: 'hash' });
    expect(refusal({ type: 'fetchWeights', hash: 'x'.repeat(129) })).toEqual({ code: ErrorCode.InvalidMessage, field: 'hash' });
    expect(refusal({ type: 'fetchWeights', hash: 'ab', extra: 1 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'extra' });
    expect(refusal({ type: 'leave', reason: 42 })).toEqual({ code: ErrorCode.InvalidMessage, field: 'reason' });
  });
});

describe('TesseraError', () => {
  it('carries code and field, names the field in its message once, and travels without its stack', () => {
    const error = new TesseraError(ErrorCode.InvalidMessage, 'expected a string, got 5', { field: 'backend' });
    expect(error.message).toBe('expected a string, got 5 (field: backend)');
    // On the wire the field goes beside the message, not in it: rebuilt there (a worker's client), it is named once.
    const wire = error.toWire();
    expect(wire).toEqual({ code: ErrorCode.InvalidMessage, message: 'expected a string, got 5', field: 'backend' });
    expect(new TesseraError(wire.code, wire.message, { field: wire.field }).message).toBe(error.message);
    expect(new TesseraError(ErrorCode.Internal, 'oops').toWire()).toEqual({ code: ErrorCode.Internal, message: 'oops' });
    expect(isTesseraError(error)).toBe(true);
    expect(isTesseraError(new Error('plain'))).toBe(false);
  });

  it('error messages describe the actual value briefly', () => {
    const message = (() => {
      try {
        parseWorkerMessage({ ...update, tensors: 'x'.repeat(1000) });
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error('expected parseWorkerMessage to throw');
    })();
    expect(message.length).toBeLessThan(200);
    expect(message).toMatch(/^expected bytes, got "x{40}…" \(field: tensors\)$/);
  });
});
