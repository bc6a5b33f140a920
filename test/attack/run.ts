#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { selectNodeBackend } from '../../runtime/node/backend.ts';
import { ATTACKS, attackById } from './attacks.ts';
import { runScenario, type ScenarioResult } from './scenario.ts';
import { baselines, formatTable, judgeRuns } from './table.ts';

const USAGE = `Usage: npx tsx test/attack/run.ts [options]

Trains a small DCGAN with four in-process workers, one of them hostile, once per
attack and aggregation rule (plus a clean run per rule), and prints a table:
attack x rule -> held-out loss, its ratio to the clean run, and the round in
which verification quarantined the attacker. Exits 1 when a target is missed.

  --rounds N        training steps per run (default 300)
  --rules LIST      comma-separated rule ids (default mean,trimmed-mean,centered-clip)
  --attacks LIST    comma-separated attack ids (default all: ${ATTACKS.map((attack) => attack.id).join(', ')})
  --seed N          data, noise and duplicate plan (default 1)
  --share X         training.verification.duplicateShare (default 0.05)
  --transport T     memory (the in-memory transport, default) or websocket (real sockets on loopback)
`;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '300' },
    rules: { type: 'string', default: 'mean,trimmed-mean,centered-clip' },
    attacks: { type: 'string', default: ATTACKS.map((attack) => attack.id).join(',') },
    seed: { type: 'string', default: '1' },
    share: { type: 'string', default: '0.05' },
    transport: { type: 'string', default: 'memory' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

await selectNodeBackend('wasm');
const rounds = Number(values.rounds);
const seed = Number(values.seed);
const duplicateShare = Number(values.share);
if (values.transport !== 'memory' && values.transport !== 'websocket') throw new Error(`--transport is memory or websocket, not ${values.transport}`);
const transport = values.transport;
const attacks = values.attacks.split(',').map(attackById);
const results: ScenarioResult[] = [];
const rules = values.rules.split(',');
const runs = [...baselines(rules, attacks), ...rules.flatMap((rule) => attacks.map((attack) => ({ rule, attack })))];
for (const run of runs) {
  const result = await runScenario({ ...run, rounds, seed, duplicateShare, transport });
  results.push(result);
  process.stderr.write(
    `${result.attack} / ${result.rule} ${result.setting}: loss ${result.heldOutLoss.toFixed(3)}, quarantined at ${result.quarantinedAt ?? 'never'} (${result.seconds.toFixed(1)} s)\n`,
  );
}
const rows = judgeRuns(results);
process.stdout.write(`${rounds} rounds, seed ${seed}, duplicateShare ${duplicateShare}\n\n${formatTable(rows)}\n`);
process.exit(rows.some((row) => row.misses.length > 0) ? 1 : 0);
