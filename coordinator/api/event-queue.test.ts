import { describe, expect, it } from 'vitest';
import { EventQueue } from './event-queue.ts';

describe('EventQueue', () => {
  it('hands events out in order and counts their bytes', () => {
    const queue = new EventQueue(10, 1000);
    expect(queue.push('round', '{"round":1}')).toBe(true);
    expect(queue.push('status', '{}')).toBe(true);
    expect(queue.bytes).toBe(13);
    expect(queue.shift()).toEqual({ event: 'round', data: '{"round":1}' });
    expect(queue.shift()).toEqual({ event: 'status', data: '{}' });
    expect(queue.shift()).toBeUndefined();
    expect(queue.bytes).toBe(0);
  });

  it('refuses an event past the count or the byte bound, and takes a first event of any size', () => {
    const byCount = new EventQueue(2, 1000);
    expect([byCount.push('round', '1'), byCount.push('round', '2'), byCount.push('round', '3')]).toEqual([true, true, false]);
    expect(byCount.length).toBe(2);
    const byBytes = new EventQueue(100, 10);
    expect(byBytes.push('snapshot', 'x'.repeat(50))).toBe(true);
    expect(byBytes.push('round', '1')).toBe(false);
    byBytes.shift();
    expect(byBytes.push('round', '12345')).toBe(true);
    expect(byBytes.push('round', '123456')).toBe(false);
  });

  it('keeps only the newest workers list: a reader behind on membership is not dropped for it', () => {
    const queue = new EventQueue(3, 1000);
    queue.push('round', 'r1');
    for (let i = 0; i < 100; i++) expect(queue.push('workers', `[${i}]`)).toBe(true);
    expect(queue.length).toBe(2);
    queue.shift();
    expect(queue.shift()).toEqual({ event: 'workers', data: '[99]' });
  });
});
