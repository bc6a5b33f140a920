import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { createUniform } from '../training/random.ts';
import { pack } from './packr.ts';
import { decodeUntrusted, type DecodeBudget } from './untrusted.ts';

const roomy: DecodeBudget = {
  maxBytes: 1 << 24,
  maxElements: 1 << 20,
  maxDepth: 16,
  maxStringBytes: 1 << 20,
  maxTotalStringBytes: 1 << 24,
  maxBinBytes: 1 << 22,
};
const bytes = (...values: number[]) => new Uint8Array(values);

/** The TesseraError `run` throws (fails the test when it throws none or another kind). */
function refusal(run: () => unknown): TesseraError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TesseraError);
    return error as TesseraError;
  }
  throw new Error('expected a refusal');
}

/** A random value of every kind msgpackr packs for the protocol: what honest peers send. */
function randomValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 3 ? 9 : 11));
  const int = (bits: number) => Math.floor(next() * 2 ** bits) * (next() < 0.5 ? -1 : 1);
  switch (pick) {
    case 0:
      return null;
    case 1:
      return next() < 0.5;
    case 2:
      return int(7);
    case 3:
      return int([8, 16, 32, 40, 53][Math.floor(next() * 5)]);
    case 4:
      return [0.5, -0, NaN, Infinity, -Infinity, 1e-310, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER][Math.floor(next() * 9)];
    case 5:
      return (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20);
    case 6:
      return randomString(next, Math.floor(next() * (next() < 0.9 ? 40 : 20_000)));
    case 7:
      return Uint8Array.from({ length: Math.floor(next() * (next() < 0.9 ? 20 : 70_000)) }, () => Math.floor(next() * 256));
    case 8:
      return randomString(next, 3);
    case 9:
      return Array.from({ length: Math.floor(next() * (next() < 0.95 ? 6 : 20)) }, () => randomValue(next, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      const count = Math.floor(next() * (next() < 0.95 ? 6 : 20));
      for (let i = 0; i < count; i++) object[randomString(next, 1 + Math.floor(next() * 12))] = randomValue(next, depth + 1);
      return object;
    }
  }
}

function randomString(next: () => number, length: number): string {
  const alphabets = ['abcXYZ_-.0123456789', 'äöüßé€', '日本語テキスト', '😀🧪🚀'];
  const alphabet = [...alphabets[Math.floor(next() * alphabets.length)]];
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[Math.floor(next() * alphabet.length)];
  return text;
}

/** Plain JS for comparison: byte strings as hex, -0 kept apart from 0. */
function comparable(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') };
  if (Object.is(value, -0)) return '-0';
  if (Array.isArray(value)) return value.map(comparable);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, comparable(item)]));
  return value;
}

describe('decodeUntrusted', () => {
  it('gives back what msgpackr packed, as msgpackr reads it, for 2,000 random valid values', () => {
    const next = createUniform(11);
    const reference = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
    for (let i = 0; i < 2_000; i++) {
      const value = randomValue(next, 0);
      const packed = pack(value).slice();
      const decoded = decodeUntrusted(packed, roomy);
      expect(comparable(decoded)).toEqual(comparable(reference.unpack(packed)));
      // The same as the value itself, but for -0, which msgpackr packs as the integer 0.
      expect(JSON.stringify(comparable(decoded))).toBe(JSON.stringify(comparable(value)).replaceAll('"-0"', '0'));
    }
  });

  it('decodes maps as plain objects and byte strings as views of the input', () => {
    const input = pack({ type: 'update', tensors: new Uint8Array([1, 2, 3]) }).slice();
    const decoded = decodeUntrusted(input, roomy) as { type: string; tensors: Uint8Array };
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(decoded.tensors.constructor).toBe(Uint8Array);
    expect(decoded.tensors.buffer).toBe(input.buffer);
  });

  it('decodes every integer width, and 64-bit integers only within the safe range', () => {
    const cases: [number[], number][] = [
      [[0xcc, 0xff], 255],
      [[0xcd, 0xff, 0xff], 65535],
      [[0xce, 0xff, 0xff, 0xff, 0xff], 2 ** 32 - 1],
      [[0xcf, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], Number.MAX_SAFE_INTEGER],
      [[0xd0, 0x80], -128],
      [[0xd1, 0x80, 0], -32768],
      [[0xd2, 0x80, 0, 0, 0], -(2 ** 31)],
      [[0xd3, 0xff, 0xe0, 0, 0, 0, 0, 0, 1], -Number.MAX_SAFE_INTEGER],
      [[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], -1],
      [[0xe0], -32],
      [[0xca, 0x3f, 0xc0, 0, 0], 1.5],
    ];
    for (const [input, expected] of cases) expect(decodeUntrusted(bytes(...input), roomy)).toBe(expected);
    for (const input of [
      [0xcf, 0, 0x20, 0, 0, 0, 0, 0, 0],
      [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
      [0xd3, 0xff, 0xe0, 0, 0, 0, 0, 0, 0],
      [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
    ]) {
      const error = refusal(() => decodeUntrusted(bytes(...input), roomy));
      expect(error.code).toBe(ErrorCode.DecodeFailed);
      expect(error.message).toMatch(/safe integer/);
    }
  });

  it('refuses every extension type, whatever msgpackr would have built from it', () => {
    const rich = new Packr({ structuredClone: true, useBigIntExtension: true });
    const made = [new Date(0), new Set([1]), /a/g, new Error('boom'), 2n ** 70n, undefined].map((value) => rich.pack(value).slice());
    const crafted = [
      bytes(0xd4, 1, 0),
      bytes(0xd5, 1, 0, 0),
      bytes(0xd6, 0xff, 0, 0, 0, 0),
      bytes(0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0),
      bytes(0xd8, 1, ...new Array(16).fill(0)),
      bytes(0xc7, 1, 0x42, 0x7f),
      bytes(0xc8, 0, 1, 0x42, 0x7f),
      bytes(0xc9, 0, 0, 0, 1, 0x42, 0x7f),
      // Inside a message, where the protocol's fields are.
      bytes(0x81, 0xa4, ...new TextEncoder().encode('type'), 0xd6, 0xff, 0, 0, 0, 0),
    ];
    for (const input of [...made, ...crafted]) {
      const error = refusal(() => decodeUntrusted(input, roomy));
      expect(error.code).toBe(ErrorCode.DecodeFailed);
      expect(error.message).toMatch(/extension/);
    }
    expect(refusal(() => decodeUntrusted(crafted.at(-1)!, roomy)).field).toBe('type');
  });

  it('refuses malformed input: reserved byte, trailing bytes, bad keys, invalid UTF-8, every truncation', () => {
    const malformed: [Uint8Array, RegExp][] = [
      [bytes(0xc1), /reserved/],
      [bytes(0x01, 0x02), /after the end/],
      [bytes(0x81, 0x01, 0x02), /key must be a string/],
      [bytes(0x81, 0xc0, 0x02), /key must be a string/],
      [bytes(0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 0x80), /__proto__/],
      [bytes(0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02), /twice/],
      [bytes(0xa2, 0xc3, 0x28), /UTF-8/],
      [bytes(0xd9, 40, 0xff, ...new Array(39).fill(0x61)), /UTF-8/],
    ];
    for (const [input, message] of malformed) {
      const error = refusal(() => decodeUntrusted(input, roomy));
      expect(error.code).toBe(ErrorCode.DecodeFailed);
      expect(error.message).toMatch(message);
    }
    const whole = pack({ type: 'update', round: 2 ** 40, losses: { d: 0.5 }, tensors: new Uint8Array(10), name: 'äö' }).slice();
    for (let length = 0; length < whole.length; length++) {
      expect(refusal(() => decodeUntrusted(whole.subarray(0, length), roomy)).code).toBe(ErrorCode.DecodeFailed);
    }
  });

  it('refuses declared lengths beyond the remaining bytes at once, before allocating', () => {
    for (const header of [
      [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0xdf, 0xff, 0xff, 0xff, 0xff],
      [0xdb, 0xff, 0xff, 0xff, 0xff],
      [0xc6, 0xff, 0xff, 0xff, 0xff],
      [0xdc, 0xff, 0xff, 0x80],
    ]) {
      // The message names the remaining bytes: the length check fired before any allocation of the declared size (4 GiB).
      const error = refusal(() =>
        decodeUntrusted(bytes(...header, 0, 0, 0), {
          ...roomy,
          maxElements: 2 ** 32,
          maxStringBytes: 2 ** 32,
          maxTotalStringBytes: 2 ** 32,
          maxBinBytes: 2 ** 32,
        }),
      );
      expect(error.code).toBe(ErrorCode.DecodeFailed);
      expect(error.message).toMatch(/remain/);
    }
  });

  it('stops at each budget with TooLarge naming it, and the path where it was exceeded', () => {
    const budget: DecodeBudget = { maxBytes: 1 << 20, maxElements: 100, maxDepth: 3, maxStringBytes: 8, maxTotalStringBytes: 20, maxBinBytes: 4 };
    const over: [unknown, RegExp, string | undefined][] = [
      [new Array(200).fill({}), /maxElements/, undefined],
      [{ list: new Array(120).fill([]) }, /maxElements/, 'list'],
      [{ a: { b: { c: {} } } }, /maxDepth/, 'a.b.c'],
      [{ a: 'x'.repeat(9) }, /maxStringBytes/, 'a'],
      [{ abcdefgh: 'abcdefgh', xyzw: 'abcdefgh' }, /maxTotalStringBytes/, 'xyzw'],
      [{ tensors: [new Uint8Array(4), new Uint8Array(5)] }, /maxBinBytes/, 'tensors[1]'],
    ];
    for (const [value, message, field] of over) {
      const error = refusal(() => decodeUntrusted(pack(value).slice(), budget));
      expect(error.code).toBe(ErrorCode.TooLarge);
      expect(error.message).toMatch(message);
      expect(error.field).toBe(field);
    }
    expect(refusal(() => decodeUntrusted(new Uint8Array(2 << 20), budget)).message).toMatch(/maxBytes/);
  });

  it('refuses 8 MB of empty maps after the element budget, without building them', () => {
    const input = new Uint8Array(8 * 1024 * 1024).fill(0x80);
    input.set([0xdd, 0x00, 0x7f, 0xff, 0xfb]);
    const before = process.memoryUsage().heapUsed;
    const error = refusal(() => decodeUntrusted(input, { ...roomy, maxElements: 10_000 }));
    expect(error.code).toBe(ErrorCode.TooLarge);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(16 * 1024 * 1024);
  });
});
