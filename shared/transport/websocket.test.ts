import { describe, expect, it } from 'vitest';
import { closeReason } from './websocket.ts';

describe('closeReason', () => {
  const bytes = (text: string) => new TextEncoder().encode(text).byteLength;

  it('keeps a short reason as it is', () => {
    expect(closeReason('INVALID_MESSAGE: bad hello')).toBe('INVALID_MESSAGE: bad hello');
  });

  it('cuts a long reason to 123 bytes of UTF-8, at a character', () => {
    expect(closeReason('x'.repeat(500))).toBe('x'.repeat(123));
    // Three bytes each: 41 fit in 123.
    const cut = closeReason('€'.repeat(100));
    expect(cut).toBe('€'.repeat(41));
    expect(bytes(closeReason(`a${'€'.repeat(100)}`))).toBe(121);
  });
});
