import { describe, expect, it } from 'vitest';
import { lossesOf, participationOf, RoundTable, throughputOf, trafficOf, type RoundFacts } from './series.ts';

const row = (overrides: Partial<RoundFacts> = {}): RoundFacts => ({
  durationMs: 500,
  samplesPerSecond: 24,
  losses: { d: 1.25, g: 0.75 },
  updates: [
    { workerId: 'a', samples: 8, bytes: 1000 },
    { workerId: 'b', samples: 4, bytes: 1500 },
  ],
  failures: [{ workerId: 'c', code: 'DEADLINE', message: 'late' }],
  ...overrides,
});

describe('RoundTable', () => {
  it('gives a late key nulls for the rounds before it, so every column is as long as x', () => {
    const table = new RoundTable();
    expect(table.push(1, { total: 5 })).toEqual(['total']);
    expect(table.push(2, { total: 6, 'worker:a': 3 })).toEqual(['worker:a']);
    table.push(3, { total: 7 });
    expect(table.data(['total', 'worker:a'])).toEqual([
      [1, 2, 3],
      [5, 6, 7],
      [null, 3, null],
    ]);
  });

  it('keeps at most maxPoints rounds, dropping the oldest, and ignores rounds already seen', () => {
    const table = new RoundTable(3);
    for (let round = 0; round < 5; round++) table.push(round, { total: round * 10 });
    table.push(4, { total: -1 });
    table.push(2, { total: -1 });
    expect(table.data(['total'])).toEqual([
      [2, 3, 4],
      [20, 30, 40],
    ]);
  });

  it('keeps when each round closed beside it, for charts against wall time', () => {
    const table = new RoundTable(2);
    table.push(1, { total: 5 }, 1_700_000_000_000);
    table.push(2, { total: 6 }, 1_700_000_001_500);
    table.push(3, { total: 7 }, 1_700_000_002_250);
    // Seconds since the epoch (uPlot's time unit), trimmed with the rounds.
    expect(table.data(['total'], 'time')).toEqual([
      [1_700_000_001.5, 1_700_000_002.25],
      [6, 7],
    ]);
    expect(table.data(['total'], 'round')).toEqual([
      [2, 3],
      [6, 7],
    ]);
    table.clear();
    expect(table.data(['total'], 'time')).toEqual([[], new Array(0)]);
  });

  it('draws a non-finite value as a gap', () => {
    const table = new RoundTable();
    table.push(0, { d: Number.NaN });
    expect(table.data(['d'])).toEqual([[0], [null]]);
  });
});

describe('round rows to chart values', () => {
  it('splits the aggregate speed by worker over the round duration', () => {
    expect(throughputOf(row())).toEqual({ total: 24, 'worker:a': 16, 'worker:b': 8 });
  });

  it('takes whatever losses the model reports', () => {
    expect(lossesOf(row())).toEqual({ d: 1.25, g: 0.75 });
    expect(lossesOf(row({ losses: { mse: 0.1 } }))).toEqual({ mse: 0.1 });
  });

  it('counts updates and failures and sums update bytes', () => {
    expect(participationOf(row())).toEqual({ durationMs: 500, updates: 2, failures: 1 });
    expect(trafficOf(row())).toEqual({ bytes: 2500 });
    expect(trafficOf(row({ updates: [] }))).toEqual({ bytes: 0 });
  });
});
