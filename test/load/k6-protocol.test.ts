import { describe, expect, it } from 'vitest';
import { getCodec } from '../../shared/codec/index.ts';
import { tensorsToArrays } from '../../shared/codec/named.ts';
import { pack, unpack } from '../../shared/codec/packr.ts';
import { PROTOCOL_VERSION, parseWorkerMessage, type Update } from '../../shared/protocol/messages.ts';
import * as k6 from './k6-protocol.js';

/** Byte strings compare as plain Uint8Arrays (msgpackr hands back Buffers in Node). */
const plain = (value: unknown): unknown =>
  value instanceof Uint8Array
    ? Array.from(value)
    : Array.isArray(value)
      ? value.map(plain)
      : value && typeof value === 'object'
        ? Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]))
        : value;

const VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  1,
  127,
  128,
  255,
  256,
  65_535,
  65_536,
  2 ** 32 - 1,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32_768,
  -(2 ** 31),
  0.5,
  -1.25e-7,
  2 ** 40,
  '',
  'round',
  'x'.repeat(31),
  'x'.repeat(32),
  'y'.repeat(300),
  'z'.repeat(70_000),
  'Grüße, 東京 🙂',
  new Uint8Array(0),
  new Uint8Array(300).fill(7),
  new Uint8Array(70_000).fill(9),
  [],
  Array.from({ length: 20 }, (_, i) => i * 1000),
  Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  { type: 'assign', sampleIndices: [1, 2, 3], nested: { a: [{ b: 'c' }] } },
];

describe("the k6 scripts' msgpack and worker messages", () => {
  it('speaks the protocol version the coordinator does', () => {
    expect(k6.PROTOCOL_VERSION).toBe(PROTOCOL_VERSION);
  });

  it.each(VALUES.map((value, index) => [index, value]))('round-trips value %i with msgpackr both ways', (_index, value) => {
    expect(plain(unpack(k6.encode(value)))).toEqual(plain(value));
    expect(plain(k6.decode(pack(value)))).toEqual(plain(value));
  });

  it("builds a hello and an update the coordinator's door and f32 codec accept", () => {
    expect(parseWorkerMessage(unpack(k6.hello({ name: 'k6-1', token: 't' })))).toMatchObject({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name: 'k6-1',
      token: 't',
    });
    for (const message of [k6.heartbeat(), k6.leave('done'), k6.fetchWeights('abc')]) expect(() => parseWorkerMessage(unpack(message))).not.toThrow();

    // A weights message as the coordinator sends it.
    const shapes: Record<string, number[]> = { 'g_dense/kernel': [8, 392], 'g_dense/bias': [392], 'd_conv1/kernel': [4, 4, 1, 4], 'd_logit/bias': [1] };
    const weights = getCodec('f32').encode(
      Object.fromEntries(
        Object.entries(shapes).map(([name, shape]) => [
          name,
          { dtype: 'float32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1) },
        ]),
      ),
    );
    const received = k6.decode(pack({ type: 'weights', hash: 'h', version: 3, codec: 'f32', tensors: weights }));
    const learned = k6.tensorShapes(received);
    expect(Object.fromEntries(learned.map(({ name, shape }) => [name, shape]))).toEqual(shapes);

    const assign = { jobId: 'default', round: 7, version: 3, weightsHash: 'h', sampleIndices: [4, 8], codec: 'f32' };
    const update = parseWorkerMessage(unpack(k6.update(assign, learned, 12))) as Update;
    expect(update).toMatchObject({ type: 'update', jobId: 'default', round: 7, version: 3, weightsHash: 'h', samples: 2, codec: 'f32' });
    const grads = tensorsToArrays(getCodec('f32').decode(update.tensors), shapes);
    for (const values of Object.values(grads)) for (const value of values) expect(Math.abs(value)).toBeLessThan(1e-3);
    expect(() => k6.update({ ...assign, codec: 'int8' }, learned, 12)).toThrow(/f32 only/);
  });
});
