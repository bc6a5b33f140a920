import { describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { f32Codec } from './f32.ts';
import { getCodec, listCodecs, registerCodec } from './registry.ts';
import type { TensorCodec } from './types.ts';

const fake = (id: string): TensorCodec => ({ id, lossless: true, encode: f32Codec.encode, decode: f32Codec.decode, maxEncodedBytes: f32Codec.maxEncodedBytes });

describe('codec registry', () => {
  it('finds a registered codec by its wire id and lists it in order', () => {
    const a = fake('test-a');
    const b = fake('test-b');
    registerCodec(a);
    registerCodec(b);
    expect(getCodec('test-a')).toBe(a);
    const ids = listCodecs().map((c) => c.id);
    expect(ids.indexOf('test-a')).toBeLessThan(ids.indexOf('test-b'));
  });

  it('throws on a duplicate id and keeps the first codec', () => {
    const first = fake('test-dup');
    registerCodec(first);
    expect(() => registerCodec(fake('test-dup'))).toThrow(/already registered/);
    expect(getCodec('test-dup')).toBe(first);
  });

  it('refuses an empty id', () => {
    expect(() => registerCodec(fake(''))).toThrow(TesseraError);
  });

  it.each([['nope'], [''], [undefined], [42], ['__proto__'], ['constructor']])('gives UnknownCodec on field codec for %s', (id) => {
    let caught: unknown;
    try {
      getCodec(id);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TesseraError);
    expect((caught as TesseraError).code).toBe(ErrorCode.UnknownCodec);
    expect((caught as TesseraError).field).toBe('codec');
  });

  it('has f32, f16 and int8 once the codec index is imported', async () => {
    const index = await import('./index.ts');
    expect(['f32', 'f16', 'int8'].map((id) => index.getCodec(id).id)).toEqual(['f32', 'f16', 'int8']);
  });
});
