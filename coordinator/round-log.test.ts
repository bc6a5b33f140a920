import { describe, expect, it } from 'vitest';
import { isQualityRow, parseRoundLog } from './round-log.ts';

describe('the round log', () => {
  it('splits its lines by kind: rounds have none, quality lines say so, a line cut short or of a kind unknown here is skipped', () => {
    const round = (n: number) => ({ round: n, version: n, applied: true });
    const quality = { kind: 'quality', round: 1, version: 2, frechet: 80 };
    const text =
      [round(0), round(1), quality, { kind: 'later-kind', round: 2 }, round(2)].map((line) => JSON.stringify(line)).join('\n') + '\n{"round": 3, "vers';
    expect(parseRoundLog(text)).toEqual({ rounds: [round(0), round(1), round(2)], quality: [quality] });
    expect(parseRoundLog('')).toEqual({ rounds: [], quality: [] });
    expect(isQualityRow(quality)).toBe(true);
    expect(isQualityRow(round(0))).toBe(false);
    expect(isQualityRow(null)).toBe(false);
  });
});
