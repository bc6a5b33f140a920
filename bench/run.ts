/**
 * Runs every benchmark in bench/, one after another, and prints their tables.
 *
 *   npm run bench                       # each at its full size (several minutes)
 *   npm run bench -- --quick            # each as a smoke run (about a minute in all)
 *   npm run bench -- --only codec,local-update
 *
 * A benchmark is any bench/*.ts but this file (what they share is in
 * bench/lib/); each takes `--quick` for its short mode (bench/lib/options.ts). Each runs in its own
 * process, since tfjs backends are process-global, and prints its own table
 * with ratios against a baseline measured in the same run. A summary of
 * which ran, for how long and how each ended comes last; the exit code is 1
 * when any failed.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE = `Usage: npm run bench -- [--quick] [--only NAME,NAME]

Runs each benchmark in bench/ in turn and prints its table.

  --quick              a short run of each (smaller batches, fewer repeats)
  --only NAMES         only these benchmarks, comma-separated (file names without .ts)
  --help               print this and exit
`;

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
/** The longest one benchmark may take before it counts as stuck and is killed. */
const TIMEOUT_MS = { quick: 10 * 60_000, full: 60 * 60_000 };

/** The benchmarks: bench/*.ts but this runner, by name. */
export function listBenchmarks(dir = BENCH_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter(
      (entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && entry.name !== basename(fileURLToPath(import.meta.url)),
    )
    .map((entry) => entry.name.slice(0, -'.ts'.length))
    .sort();
}

interface Outcome {
  name: string;
  seconds: number;
  status: string;
}

/** Runs one benchmark in its own process (its output straight to ours) and says how it ended. */
function runBenchmark(name: string, quick: boolean): Promise<Outcome> {
  const started = performance.now();
  const args = ['--import', 'tsx', join(BENCH_DIR, `${name}.ts`), ...(quick ? ['--quick'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), quick ? TIMEOUT_MS.quick : TIMEOUT_MS.full);
  return new Promise((resolve) => {
    const done = (status: string) => {
      clearTimeout(timer);
      resolve({ name, seconds: (performance.now() - started) / 1000, status });
    };
    child.on('error', (error) => done(`could not start: ${error.message}`));
    child.on('exit', (code, signal) => done(signal ? `killed by ${signal}` : code === 0 ? 'ok' : `exit code ${code}`));
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const all = listBenchmarks();
  const chosen = values.only ? values.only.split(',').map((name) => name.trim().replace(/\.ts$/, '')) : all;
  const unknown = chosen.filter((name) => !all.includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`no benchmark ${unknown.join(', ')}; there are: ${all.join(', ')}\n`);
    return 2;
  }
  const outcomes: Outcome[] = [];
  for (const name of chosen) {
    console.log(`\n## bench/${name}.ts${values.quick ? ' --quick' : ''}\n`);
    outcomes.push(await runBenchmark(name, values.quick));
  }
  console.log(`\n## summary (Node ${process.version}${values.quick ? ', quick' : ''})\n`);
  const width = Math.max(...outcomes.map((outcome) => outcome.name.length), 'benchmark'.length);
  console.log(`${'benchmark'.padEnd(width)}  seconds  result`);
  for (const outcome of outcomes) console.log(`${outcome.name.padEnd(width)}  ${outcome.seconds.toFixed(1).padStart(7)}  ${outcome.status}`);
  return outcomes.every((outcome) => outcome.status === 'ok') ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main();
