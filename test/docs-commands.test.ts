import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createApp } from '../coordinator/app.ts';
import { Hub } from '../coordinator/hub.ts';
import { NATS_CLI_OPTIONS } from '../runtime/node/nats.ts';
import { ROOT } from './helpers/processes.ts';

/*
 * The commands a reader is told to type: every package.json script points at
 * files that exist, and every command in a fenced block of the docs (README.md,
 * docs/, the folders' READMEs) that runs one of the project's programs at
 * least parses its arguments: with --help added it exits 0 and prints its
 * usage, which lists every option the program accepts.
 */

const scripts: Record<string, string> = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts;

/** Scripts whose run is not a parse: `npm test` type-checks and runs the whole suite. */
const NOT_RUN = new Set(['test', 'test:unit', 'typecheck']);

/** Splits a command line as a POSIX shell would for these simple cases: blanks, quotes, no expansions. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const match of line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) words.push(match[1] ?? match[2] ?? match[3]);
  return words;
}

/** The Markdown files of the project (not of its dependencies or its outputs). */
function markdownFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (['node_modules', '.git', 'runs', 'test-artifacts'].includes(entry.name)) return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

interface DocumentedCommand {
  /** file:line where the docs show it. */
  where: string;
  text: string;
  /** The TypeScript entry point it runs, and the arguments before --help. */
  entry: string;
  args: string[];
}

/** The entry point and fixed arguments of a `tsx FILE ...` script. */
function scriptEntry(name: string): { entry: string; args: string[] } | undefined {
  const words = shellWords(scripts[name] ?? '');
  return words[0] === 'tsx' ? { entry: words[1], args: words.slice(2) } : undefined;
}

/** Commands in fenced code blocks that run the project's programs: npm start / npm run X / npx tsx FILE. */
function documentedCommands(): { commands: DocumentedCommand[]; unknownScripts: string[] } {
  const commands: DocumentedCommand[] = [];
  const unknownScripts: string[] = [];
  for (const file of markdownFiles()) {
    let fenced = false;
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((raw, index) => {
      if (/^\s*```/.test(raw)) {
        fenced = !fenced;
        return;
      }
      if (!fenced) return;
      const where = `${relative(ROOT, file)}:${index + 1}`;
      // One line may hold several commands (`npm install && npm start`); a comment ends it.
      for (const part of raw.replace(/\s#\s.*$/, '').split(/&&|;/)) {
        const text = part
          .trim()
          .replace(/^\$\s+/, '')
          .replace(/^(\w+=\S*\s+)+/, '');
        const npm = text.match(/^npm (?:start|test|run (\S+))(?:\s+--\s+(.*))?$/);
        if (npm) {
          const name = npm[1] ?? text.split(/\s+/)[1];
          if (!(name in scripts)) unknownScripts.push(`${where}: ${text}`);
          else if (!NOT_RUN.has(name)) {
            const script = scriptEntry(name);
            if (script) commands.push({ where, text, entry: script.entry, args: [...script.args, ...shellWords(npm[2] ?? '')] });
          }
          continue;
        }
        const tsx = text.match(/^npx tsx (\S+)(.*)$/);
        if (tsx) commands.push({ where, text, entry: tsx[1], args: shellWords(tsx[2]) });
      }
    });
  }
  return { commands, unknownScripts };
}

/** Runs an entry point as npm would (node with tsx), bounded in time; resolves with its exit code and output. */
function run(entry: string, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

type ParseArgsOptionConfig = NonNullable<ParseArgsConfig['options']>[string];

/** The options an entry point's parseArgs declares (its own, and the NATS ones it spreads in), as parseArgs takes them. */
function declaredOptions(entry: string): { options: Record<string, ParseArgsOptionConfig>; allowPositionals: boolean } | undefined {
  const source = readFileSync(join(ROOT, entry), 'utf8');
  if (!source.includes('parseArgs(')) return undefined;
  const options: Record<string, ParseArgsOptionConfig> = source.includes('...NATS_CLI_OPTIONS') ? { ...NATS_CLI_OPTIONS } : {};
  for (const match of source.matchAll(/['"]?([a-z][a-z0-9-]*)['"]?\s*:\s*\{\s*type:\s*'(string|boolean)'([^}]*)\}/g)) {
    options[match[1]] = { type: match[2] as 'string' | 'boolean', multiple: /multiple:\s*true/.test(match[3]) };
  }
  return { options, allowPositionals: /allowPositionals:\s*true/.test(source) };
}

/** Runs `task` over `items`, `limit` at a time (the machine's cores are shared). */
async function inBatches<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += limit) results.push(...(await Promise.all(items.slice(i, i + limit).map(task))));
  return results;
}

describe('package.json scripts', () => {
  it.each(Object.entries(scripts))('%s: its program and every file it names exist', (name, command) => {
    const [program, ...rest] = shellWords(command);
    const onPath = program === 'bash' || program === 'node' || existsSync(join(ROOT, 'node_modules', '.bin', program));
    expect(onPath, `${name}: ${program} is neither a shell nor in node_modules/.bin`).toBe(true);
    for (const word of rest.filter((candidate) => /\.(ts|js|mjs|sh)$/.test(candidate))) expect(existsSync(join(ROOT, word)), `${name}: ${word}`).toBe(true);
  });
});

describe('documented commands', () => {
  const { commands, unknownScripts } = documentedCommands();

  it('name only scripts that package.json has', () => {
    expect(commands.length).toBeGreaterThan(5);
    expect(unknownScripts).toEqual([]);
  });

  it('each parse their arguments: every program prints a usage listing every option, and every command parses', async () => {
    const failures: string[] = [];
    // A program that declares its options to parseArgs: each documented command is parsed here with those very options
    // (strict, as the program does), and the program itself runs once with --help. One that does not runs once per
    // distinct sequence of options.
    const shape = (command: DocumentedCommand) => `${command.entry} ${command.args.map((arg) => (arg.startsWith('-') ? arg : 'VALUE')).join(' ')}`;
    const runs = new Map<string, DocumentedCommand>();
    for (const command of commands) {
      if (!existsSync(join(ROOT, command.entry))) {
        failures.push(`${command.where}: ${command.entry} does not exist`);
        continue;
      }
      const declared = declaredOptions(command.entry);
      if (!declared) {
        runs.set(shape(command), command);
        continue;
      }
      if (!runs.has(command.entry)) runs.set(command.entry, { ...command, args: [] });
      try {
        parseArgs({
          args: command.args,
          options: { ...declared.options, help: { type: 'boolean' } },
          strict: true,
          allowPositionals: declared.allowPositionals,
        });
      } catch (error) {
        failures.push(`${command.where}: \`${command.text}\` does not parse: ${(error as Error).message}`);
      }
    }
    const results = await inBatches([...runs.values()], 2, async (command) => ({ command, ...(await run(command.entry, [...command.args, '--help'])) }));
    const usages = new Map<string, string>();
    for (const { command, code, output } of results) {
      if (code !== 0 || !/usage/i.test(output))
        failures.push(
          `${command.where}: \`${command.entry} ${command.args.join(' ')} --help\` exited ${code}: ${output.trim().split('\n').slice(-3).join(' | ')}`,
        );
      else usages.set(command.entry, output);
    }
    for (const [entry, usage] of usages) {
      const options = Object.keys(declaredOptions(entry)?.options ?? {});
      const missing = options.filter((option) => option !== 'help' && !new RegExp(`--${option}\\b`).test(usage));
      if (missing.length > 0) failures.push(`${entry} --help does not list ${missing.map((option) => `--${option}`).join(', ')}`);
    }
    expect(failures).toEqual([]);
  }, 600_000);

  it('cover the programs package.json runs, so each of their usages is checked too', () => {
    const documented = new Set(commands.map((command) => command.entry));
    const programs = Object.keys(scripts)
      .filter((name) => !NOT_RUN.has(name))
      .map((name) => scriptEntry(name)?.entry)
      .filter((entry): entry is string => !!entry);
    expect(programs.filter((entry) => !documented.has(entry))).toEqual([]);
  });
});

describe('docs/architecture.md', () => {
  it('lists every route the coordinator serves in its route table', () => {
    const app = createApp(new Hub({ defaultJobId: 'default', heartbeatMs: 10_000 }), {
      adminToken: 'unused',
      createJob: async () => Promise.reject(new Error('not in this test')),
    });
    const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
    const table = doc.slice(doc.indexOf('## HTTP routes'));
    const listed = new Set([...table.matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/[^`]*)`/g)].map((match) => `${match[1]} ${match[2]}`));
    const served = [...new Set(app.routes.filter((route) => route.method !== 'ALL').map((route) => `${route.method} ${route.path}`))];
    expect(served.filter((route) => !listed.has(route))).toEqual([]);
    expect([...listed].filter((route) => !served.includes(route))).toEqual([]);
  });
});
