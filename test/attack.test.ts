import { beforeAll, describe, expect, it } from 'vitest';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { attackById } from './attack/attacks.ts';
import { runScenario, type ScenarioResult } from './attack/scenario.ts';
import { baselineKey, formatTable, judgeRuns, MAX_LOSS_RATIO, MAX_QUARANTINE_ROUND } from './attack/table.ts';

/**
 * The attack test, short: each attack once, under trimmed-mean or
 * centered-clip, 50 training steps of four in-process workers with one
 * hostile, beside a clean run of each rule. The full table (300 rounds,
 * every attack under mean, trimmed-mean and centered-clip) is
 * `npx tsx test/attack/run.ts`; docs/security.md has its results.
 */

const ROUNDS = MAX_QUARANTINE_ROUND;
/** Each attack under one robust rule, the two rules taking turns; one run over real WebSockets on loopback. */
const RUNS: [attack: string, rule: string, transport: 'memory' | 'websocket'][] = [
  ['sign-flip-x10', 'centered-clip', 'websocket'],
  ['flip-at-cap', 'trimmed-mean', 'memory'],
  ['constant', 'centered-clip', 'memory'],
  ['fake-speed', 'trimmed-mean', 'memory'],
  ['stale-replay', 'centered-clip', 'memory'],
  ['stale-relabelled', 'trimmed-mean', 'memory'],
];
const results: ScenarioResult[] = [];
/** Clean runs by rule and setting: each attacked run is compared with the clean run of its rule and setting. */
const clean = new Map<string, ScenarioResult>();
/** Fake speed needs throughput batching, so its baseline is a clean run with it. */
const CLEAN_RUNS: [rule: string, training: Record<string, unknown>][] = [
  ['trimmed-mean', {}],
  ['centered-clip', {}],
  ['trimmed-mean', attackById('fake-speed').training!],
];

beforeAll(async () => {
  await selectNodeBackend('wasm');
});

describe(`attacks on a ${ROUNDS}-round DCGAN job, one hostile worker of four`, () => {
  it.each(CLEAN_RUNS)('clean run under %s %o: nobody is quarantined, every duplicate agrees', async (rule, training) => {
    const result = await runScenario({ rule, rounds: ROUNDS, training });
    results.push(result);
    clean.set(baselineKey(result), result);
    expect(result.rounds).toBe(ROUNDS);
    expect(result.honestQuarantined).toEqual([]);
    expect(result.verdicts.agree).toBeGreaterThan(0);
    expect(result.verdicts.disputed ?? 0).toBe(0);
    expect(Number.isFinite(result.heldOutLoss)).toBe(true);
  });

  it.each(RUNS)(
    `%s under %s (%s transport): held-out loss within ${MAX_LOSS_RATIO}x of clean, attacker quarantined by round ${ROUNDS}, no honest worker`,
    async (attack, rule, transport) => {
      const result = await runScenario({ attack: attackById(attack), rule, rounds: ROUNDS, transport });
      results.push(result);
      expect(result.honestQuarantined).toEqual([]);
      expect(result.quarantinedAt).not.toBeNull();
      expect(result.quarantinedAt!).toBeLessThanOrEqual(ROUNDS);
      expect(result.heldOutLoss / clean.get(baselineKey(result))!.heldOutLoss).toBeLessThanOrEqual(MAX_LOSS_RATIO);
    },
  );

  it('the table judges every run as meeting its targets', () => {
    const rows = judgeRuns(results);
    process.stdout.write(`${formatTable(rows)}\n`);
    expect(rows.flatMap((row) => row.misses)).toEqual([]);
  });
});
