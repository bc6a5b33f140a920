import { Packr } from 'msgpackr';
import { getCodec } from '../shared/codec/index.ts';
import { pack } from '../shared/codec/packr.ts';
import { PROTOCOL_VERSION, type Assign } from '../shared/protocol/messages.ts';
import { zeroUpdate } from './helpers/door.ts';

/**
 * Frames a hostile or broken worker might send, from a seeded stream: random
 * bytes, valid messages truncated, bit-flipped or spliced, fields of the
 * wrong type, msgpack extension types, lengths that promise more than
 * follows, mutated updates, and now and then a valid message.
 */

/** What the frames are built around: the worker's current assignment and a valid update's tensors. */
export interface FuzzContext {
  assign: Assign;
  tensors: Uint8Array;
}

export type FrameKind = 'random' | 'truncated' | 'flipped' | 'spliced' | 'confused' | 'extension' | 'huge-length' | 'update' | 'valid';
const KINDS: FrameKind[] = ['random', 'truncated', 'flipped', 'spliced', 'confused', 'extension', 'huge-length', 'update', 'valid'];

/** msgpackr with every extension it knows: Date, Set, RegExp, Error, BigInt, undefined. */
const rich = new Packr({ structuredClone: true, useBigIntExtension: true, moreTypes: true });

/** Makes frames from `next` (uniform in [0, 1)); `helloShare` of the messages they start from are hellos. */
export class FrameGenerator {
  constructor(
    private readonly next: () => number,
    private readonly helloShare = 0.2,
  ) {}

  /** One frame and the kind of damage it carries. */
  frame(context: FuzzContext): { kind: FrameKind; bytes: Uint8Array } {
    const kind = this.pick(KINDS);
    return { kind, bytes: this.build(kind, context) };
  }

  private build(kind: FrameKind, context: FuzzContext): Uint8Array {
    switch (kind) {
      case 'random':
        return this.bytes(this.size());
      case 'truncated': {
        const whole = pack(this.message(context)).slice();
        return whole.slice(0, this.int(whole.length));
      }
      case 'flipped': {
        const bytes = pack(this.message(context)).slice();
        for (let flips = 1 + this.int(8); flips > 0; flips--) bytes[this.int(bytes.length)] ^= 1 << this.int(8);
        return bytes;
      }
      case 'spliced': {
        const bytes = pack(this.message(context)).slice();
        const at = this.int(bytes.length + 1);
        const cut = this.next() < 0.5 ? this.int(8) : 0;
        return Uint8Array.from([...bytes.subarray(0, at), ...this.bytes(this.int(16)), ...bytes.subarray(at + cut)]);
      }
      case 'confused':
        return pack(this.confuse(this.message(context))).slice();
      case 'extension': {
        const message = this.message(context);
        const keys = Object.keys(message);
        const key = this.next() < 0.3 ? 'type' : this.pick(keys);
        return rich
          .pack({
            ...message,
            [key]: this.pick([new Date(), new Set([1]), /x/g, new Error('boom'), 2n ** 200n, undefined, new Map([[1, 2]]), new Float64Array(3)]),
          })
          .slice();
      }
      case 'huge-length':
        return this.hugeLength(context);
      case 'update':
        return pack(this.mutatedUpdate(context)).slice();
      case 'valid':
        return pack(this.message(context)).slice();
    }
  }

  /** A valid message of a random type. */
  private message(context: FuzzContext): Record<string, unknown> {
    const { assign } = context;
    if (this.next() < this.helloShare) return { type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'wasm', device: 'fuzz', name: 'fuzz' };
    switch (this.int(4)) {
      case 0:
        return { type: 'heartbeat' };
      case 1:
        return { type: 'fetchWeights', hash: assign.weightsHash };
      default:
        return this.update(context);
    }
  }

  private update({ assign, tensors }: FuzzContext): Record<string, unknown> {
    return zeroUpdate(assign, tensors);
  }

  /** A weird value of some other type than a field should have. */
  private weird(): unknown {
    return this.pick<unknown>([
      null,
      true,
      false,
      0,
      -1,
      2 ** 53,
      -(2 ** 31),
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1e308,
      '',
      'x'.repeat(300),
      'ü'.repeat(2000),
      [],
      [1, 2, 3],
      [[[[]]]],
      {},
      { a: { b: { c: 1 } } },
      new Uint8Array(10),
      new Uint8Array(0),
      'update',
      'hello',
      '__proto__',
      'constructor',
    ]);
  }

  /** One field replaced, removed, nested deeper, or one added. */
  private confuse(message: Record<string, unknown>): Record<string, unknown> {
    const copy: Record<string, unknown> = { ...message };
    const keys = Object.keys(copy);
    const key = this.pick(keys);
    switch (this.int(5)) {
      case 0:
        delete copy[key];
        break;
      case 1:
        copy[`extra${this.int(3)}`] = this.weird();
        break;
      case 2:
        if (copy.timing) copy.timing = { computeMs: this.weird(), fetchMs: 0 };
        else copy[key] = this.weird();
        break;
      case 3:
        if (copy.losses)
          copy.losses = this.pick([
            { d: this.weird() },
            { evil: 1 },
            { d: 1e308, g: -1e308 },
            Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`l${i}`, i])),
          ]);
        else copy[key] = this.weird();
        break;
      default:
        copy[key] = this.weird();
    }
    return copy;
  }

  /** An update that is close to valid: its tensors, counts or losses bent. */
  private mutatedUpdate(context: FuzzContext): Record<string, unknown> {
    const update = this.update(context);
    const tensors = context.tensors.slice();
    switch (this.int(8)) {
      case 0:
        for (let flips = 1 + this.int(4); flips > 0; flips--) tensors[this.int(tensors.length)] ^= 1 << this.int(8);
        return { ...update, tensors };
      case 1:
        return { ...update, tensors: tensors.subarray(0, this.int(tensors.length)) };
      case 2:
        return { ...update, tensors: this.bytes(this.int(tensors.length * 2)) };
      case 3: {
        // Well-formed tensors with values no gradient should have.
        const decoded = getCodec('f32').decode(context.tensors);
        const [name] = Object.keys(decoded);
        const data = decoded[name].data as Float32Array;
        data[this.int(data.length)] = this.pick([Number.NaN, Number.POSITIVE_INFINITY, 3e38, -3e38]);
        return { ...update, tensors: getCodec('f32').encode(decoded).slice() };
      }
      case 4:
        return { ...update, samples: this.pick([0, 1, 10_000, -1, 2 ** 40]) };
      case 5:
        return { ...update, round: context.assign.round + this.pick([-1, 1, 1000]), version: context.assign.version + this.pick([0, 1, -1]) };
      case 6:
        return { ...update, codec: this.pick(['f16', 'int8', 'nope', '']) };
      default:
        return { ...update, jobId: this.pick(['other', '', 'x'.repeat(200)]) };
    }
  }

  /** A frame whose header promises more than follows, alone or inside a valid prefix. */
  private hugeLength(context: FuzzContext): Uint8Array {
    const header = this.pick([
      [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0xdf, 0xff, 0xff, 0xff, 0xff],
      [0xdb, 0x7f, 0xff, 0xff, 0xff],
      [0xc6, 0xff, 0xff, 0xff, 0xf0],
      [0xc9, 0xff, 0xff, 0xff, 0xff, 0x42],
      [0xdc, 0xff, 0xff],
      [0xde, 0xff, 0xff],
    ]);
    if (this.next() < 0.5) return Uint8Array.from([...header, ...this.bytes(this.int(32))]);
    // Inside a message: a map whose last value claims the huge length.
    const prefix = pack({ type: 'update', jobId: context.assign.jobId }).slice();
    prefix[prefix[0] === 0xde ? 2 : 0] += 1;
    return Uint8Array.from([...prefix, 0xa7, ...new TextEncoder().encode('tensors'), ...header, ...this.bytes(this.int(32))]);
  }

  /** Mostly small frames, sometimes a few kB, rarely beyond a connection's limit. */
  private size(): number {
    const roll = this.next();
    if (roll < 0.6) return this.int(64);
    if (roll < 0.97) return this.int(4096);
    return 8 * 1024 + this.int(64 * 1024);
  }

  private bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }

  private int(below: number): number {
    return Math.floor(this.next() * below);
  }

  private pick<T>(options: readonly T[]): T {
    return options[this.int(options.length)];
  }
}
