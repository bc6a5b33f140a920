import { describe, expect, it } from 'vitest';
import { handOver, takeOver } from './handed-over.ts';

describe('handed-over message buffers', () => {
  it('hands over a message that fills its buffer, once; never a view of a larger buffer, nor a shared one', () => {
    const whole = new Uint8Array(100);
    expect(handOver(whole)).toBe(whole);
    const tensors = whole.subarray(10, 90);
    // Taken through any view of it (the update's tensors are one), by one taker only.
    expect(takeOver(tensors)).toBe(whole.buffer);
    expect(takeOver(tensors)).toBeUndefined();

    const chunk = new Uint8Array(200);
    handOver(chunk.subarray(0, 100));
    handOver(chunk.subarray(100));
    expect(takeOver(chunk)).toBeUndefined();

    const shared = new Uint8Array(new SharedArrayBuffer(64));
    handOver(shared);
    expect(takeOver(shared)).toBeUndefined();
    // Never handed over: copied by whoever needs its bytes elsewhere.
    expect(takeOver(new Uint8Array(8))).toBeUndefined();
  });
});
