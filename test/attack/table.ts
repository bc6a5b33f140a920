import type { ScenarioResult } from './scenario.ts';

/** The targets of issue #11: a robust rule keeps the held-out loss within this factor of a clean run... */
export const MAX_LOSS_RATIO = 1.5;
/** ...and verification quarantines the attacker within this many rounds. */
export const MAX_QUARANTINE_ROUND = 50;
/** The rules the targets apply to (mean is in the table as the baseline that fails). */
export const ROBUST_RULES = ['trimmed-mean', 'centered-clip'];

/** One row of the attack table: a run beside the clean run of the same rule. */
export interface Row {
  result: ScenarioResult;
  ratio: number;
  /** Why the row misses its targets; empty when it meets them (or has none). */
  misses: string[];
}

/** Which clean run an attacked run is compared with: the same rule and setting. */
export const baselineKey = (result: ScenarioResult) => `${result.rule}|${result.setting}`;

/** The clean runs an attack table needs: one per rule and per distinct setting the attacks bring. */
export function baselines(
  rules: readonly string[],
  attacks: readonly { training?: Record<string, unknown> }[],
): { rule: string; training?: Record<string, unknown> }[] {
  const settings = new Map<string, Record<string, unknown> | undefined>([['{}', undefined]]);
  for (const attack of attacks) if (attack.training) settings.set(JSON.stringify(attack.training), attack.training);
  return rules.flatMap((rule) => [...settings.values()].map((training) => ({ rule, training })));
}

/** Compares each attacked run with the clean run of its rule and setting, and checks the targets. */
export function judgeRuns(results: readonly ScenarioResult[]): Row[] {
  const clean = new Map(results.filter((result) => result.attack === 'clean').map((result) => [baselineKey(result), result]));
  return results.map((result) => {
    const baseline = clean.get(baselineKey(result));
    const ratio = baseline ? result.heldOutLoss / baseline.heldOutLoss : Number.NaN;
    const misses: string[] = [];
    if (result.honestQuarantined.length > 0) misses.push(`honest worker(s) quarantined: ${result.honestQuarantined.join(', ')}`);
    if (result.attack !== 'clean' && ROBUST_RULES.includes(result.rule)) {
      if (!(ratio <= MAX_LOSS_RATIO)) misses.push(`held-out loss ${ratio.toFixed(2)}x the clean run's (target <= ${MAX_LOSS_RATIO}x)`);
      if (result.quarantinedAt === null || result.quarantinedAt > MAX_QUARANTINE_ROUND)
        misses.push(`attacker quarantined at ${result.quarantinedAt ?? 'never'} (target <= round ${MAX_QUARANTINE_ROUND})`);
    }
    return { result, ratio, misses };
  });
}

const number = (value: number) => (Math.abs(value) >= 1000 || (value !== 0 && Math.abs(value) < 0.01) ? value.toExponential(2) : value.toFixed(2));

/** The table as Markdown: attack x rule -> held-out losses, ratio to clean, round of quarantine. */
export function formatTable(rows: readonly Row[]): string {
  const lines = [
    '| attack | rule | setting | held-out d / g | loss (d+g) | x clean | quarantined at round | verdicts (agree/disputed/unresolved) | targets |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const { result, ratio, misses } of rows) {
    const losses = Object.values(result.heldOut).map(number).join(' / ');
    const verdicts = ['agree', 'disputed', 'unresolved'].map((outcome) => result.verdicts[outcome] ?? 0).join('/');
    const quarantined =
      result.attack === 'clean' ? (result.honestQuarantined.length ? result.honestQuarantined.join(', ') : 'nobody') : String(result.quarantinedAt ?? 'never');
    const targets =
      misses.length > 0 ? `MISSED: ${misses.join('; ')}` : result.attack !== 'clean' && !ROBUST_RULES.includes(result.rule) ? '(baseline)' : 'met';
    lines.push(
      `| ${result.attack} | ${result.rule} | ${result.setting || '-'} | ${losses} | ${number(result.heldOutLoss)} | ${result.attack === 'clean' ? '1.00' : number(ratio)} | ${quarantined} | ${verdicts} | ${targets} |`,
    );
  }
  return lines.join('\n');
}
