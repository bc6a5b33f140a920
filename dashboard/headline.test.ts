import { describe, expect, it } from 'vitest';
import { ClockOffset, describeMix, recentPace, workerMix, type RoundTiming } from './headline.ts';

const T0 = Date.parse('2025-01-01T12:00:00.000Z');
/** A round that closed `atSeconds` after T0, taking `durationMs`. */
const round = (atSeconds: number, samples = 32, durationMs = 500, applied = true): RoundTiming => ({
  closedAt: new Date(T0 + atSeconds * 1000).toISOString(),
  durationMs,
  samples,
  applied,
});

describe('recentPace', () => {
  it('counts the rounds closed in the last minute over the whole minute once the job is older', () => {
    // One round every 2 s for 3 minutes.
    const rows = Array.from({ length: 90 }, (_, i) => round(2 * (i + 1), 32, 2000));
    const pace = recentPace(rows, T0 + 180_000);
    // Closed in (120 s, 180 s]: rounds at 122, 124, ..., 180 s.
    expect(pace.rounds).toBe(30);
    expect(pace.spanMs).toBe(60_000);
    expect(pace.samplesPerSecond).toBeCloseTo((30 * 32) / 60, 9);
    expect(pace.roundsPerMinute).toBeCloseTo(30, 9);
  });

  it('over a younger job, covers only the time since its first round started', () => {
    // Started at 9.5 s (the first round took 500 ms), now 20 s: 10.5 s of training.
    const rows = [round(10), round(15), round(20)];
    const pace = recentPace(rows, T0 + 20_000);
    expect(pace.spanMs).toBe(10_500);
    expect(pace.samplesPerSecond).toBeCloseTo((3 * 32 * 1000) / 10_500, 9);
    expect(pace.roundsPerMinute).toBeCloseTo((3 * 60_000) / 10_500, 9);
  });

  it('a round that applied nothing counts as a round but adds no samples', () => {
    const rows = [round(-100), round(10), round(20, 32, 500, false)];
    expect(recentPace(rows, T0 + 30_000)).toEqual({ samplesPerSecond: 32 / 60, roundsPerMinute: 2, rounds: 2, spanMs: 60_000 });
  });

  it('is zero, not a division by zero, when no round closed in the window (a stalled job)', () => {
    expect(recentPace([round(0)], T0 + 120_000)).toEqual({ samplesPerSecond: 0, roundsPerMinute: 0, rounds: 0, spanMs: 60_000 });
    expect(recentPace([], T0)).toMatchObject({ samplesPerSecond: 0, rounds: 0 });
  });

  it('ignores rounds stamped after now (a clock ahead)', () => {
    expect(recentPace([round(10), round(70)], T0 + 30_000).rounds).toBe(1);
  });
});

describe('workerMix', () => {
  const worker = (kind: string, backend: string, connected = true) => ({ kind, backend, connected });

  it('groups connected workers by kind, then backend, most numerous first', () => {
    const groups = workerMix([
      worker('browser', 'wasm'),
      worker('node', 'wasm'),
      worker('node', 'tensorflow'),
      worker('node', 'wasm'),
      worker('browser', 'webgpu', false),
    ]);
    expect(groups).toEqual([
      {
        kind: 'node',
        count: 3,
        backends: [
          { backend: 'wasm', count: 2 },
          { backend: 'tensorflow', count: 1 },
        ],
      },
      { kind: 'browser', count: 1, backends: [{ backend: 'wasm', count: 1 }] },
    ]);
    expect(describeMix(groups)).toBe('3 node (wasm 2, tensorflow), 1 browser (wasm)');
  });

  it('says so when nobody is connected', () => {
    expect(describeMix(workerMix([worker('node', 'wasm', false)]))).toBe('none connected');
  });
});

describe('ClockOffset', () => {
  it('keeps the smallest gap between the page and the coordinator', () => {
    const clock = new ClockOffset();
    expect(clock.coordinatorNow(T0)).toBe(T0);
    // The page runs 5 s ahead; events arrive 40 ms, then 15 ms, after the round closed.
    clock.observe(new Date(T0).toISOString(), T0 + 5040);
    clock.observe(new Date(T0 + 1000).toISOString(), T0 + 6015);
    expect(clock.coordinatorNow(T0 + 10_000)).toBe(T0 + 10_000 - 5015);
  });
});
