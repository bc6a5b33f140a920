import { describe, expect, it } from 'vitest';
import { pack, packMessage, packOnce, unpack } from './packr.ts';

describe('packOnce and packMessage', () => {
  it('hands out the same bytes for a message packed once, however often it is sent', () => {
    const message = packOnce({ type: 'weights', hash: 'abc', version: 3, codec: 'f32', tensors: new Uint8Array([1, 2, 3, 4]) });
    const first = packMessage(message);
    expect(packMessage(message, true)).toBe(first);
    expect(first).toEqual(pack(message));
    expect(unpack(first)).toMatchObject({ type: 'weights', version: 3 });
  });

  it('packs other messages on each call, copied out of the shared buffer when kept', () => {
    const message = { type: 'idle', reason: 'r' };
    const kept = packMessage(message, true);
    expect(kept.buffer).not.toBe(pack({ other: 1 }).buffer);
    expect(unpack(kept)).toEqual(message);
    expect(packMessage(message)).not.toBe(packMessage(message));
  });
});
