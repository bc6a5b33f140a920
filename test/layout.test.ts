import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.ts';

/**
 * The layout's rules, checked on the import statements themselves: what the
 * folders promise (README's Layout table) is only true while nothing crosses them.
 */

function sources(folder: string, root = ROOT): string[] {
  return readdirSync(join(root, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

/** Every module a file imports: relative ones resolved to repo paths, packages and node: modules as written. */
function importsOf(file: string, root = ROOT): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)]
    .map((match) => match[1] ?? match[2])
    .map((spec) => (spec.startsWith('.') ? normalize(join(dirname(file), spec)) : spec));
}

/** The repo's top-level folders: an import resolved into one of them is the repo's code, not a package. */
const TOP_FOLDERS = new Set(
  readdirSync(ROOT, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name),
);
const isRepoPath = (target: string) => target.startsWith('..') || TOP_FOLDERS.has(target.split('/')[0]);

/**
 * The dashboard's imports other than its own folder, shared/ and npm packages: it takes its wire types from
 * shared/api/, as the coordinator does, never from the coordinator's internals; and it runs in a browser (no node:).
 */
function dashboardCrossings(root = ROOT): string[] {
  return sources('dashboard', root).flatMap((file) =>
    importsOf(file, root)
      .filter((target) => target.startsWith('node:') || (isRepoPath(target) && !target.startsWith('dashboard/') && !target.startsWith('shared/')))
      .map((target) => `${file} -> ${target}`),
  );
}

describe('layout', () => {
  it('no file under coordinator/ imports from worker/ (Node pieces both use live in runtime/node/)', () => {
    const crossing = sources('coordinator').flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith('worker/'))
        .map((target) => `${file} -> ${target}`),
    );
    expect(crossing).toEqual([]);
  });

  it('no file under shared/ imports a node: module or a file outside shared/ (browsers run it too)', () => {
    const crossing = sources('shared')
      .filter((file) => !file.endsWith('.test.ts'))
      .flatMap((file) =>
        importsOf(file)
          .filter((target) => target.startsWith('node:') || (!target.startsWith('shared/') && /^[a-z-]+\//.test(target) && !target.startsWith('@')))
          .map((target) => `${file} -> ${target}`),
      );
    expect(crossing).toEqual([]);
  });

  it('no file under dashboard/ imports from outside dashboard/ and shared/, but npm packages (the API types are in shared/api/)', () => {
    expect(dashboardCrossings()).toEqual([]);
  });

  it('the dashboard rule catches a stray import (the coordinator, a node: module) and lets packages and shared/ pass', () => {
    const copy = mkdtempSync(join(tmpdir(), 'tessera-layout-'));
    try {
      mkdirSync(join(copy, 'dashboard'));
      writeFileSync(
        join(copy, 'dashboard', 'stray.ts'),
        [
          "import uPlot from 'uplot';",
          "import type { RoundRow } from '../shared/api/round-log.ts';",
          "import { formatCount } from './format.ts';",
          "import type { describeJob } from '../coordinator/api/jobs.ts';",
          "import { readFileSync } from 'node:fs';",
        ].join('\n'),
      );
      expect(dashboardCrossings(copy)).toEqual(['dashboard/stray.ts -> coordinator/api/jobs.ts', 'dashboard/stray.ts -> node:fs']);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('the import scan sees imports (it would catch a crossing)', () => {
    expect(importsOf('coordinator/job-data.ts')).toContain('runtime/node/datasets.ts');
    expect(importsOf('runtime/node/fashion-mnist.ts')).toContain('node:crypto');
  });
});

describe('the type check of shared/', () => {
  it('fails when a file under shared/ imports node:fs', () => {
    const copy = mkdtempSync(join(tmpdir(), 'tessera-layout-'));
    try {
      cpSync(join(ROOT, 'shared'), join(copy, 'shared'), { recursive: true });
      cpSync(join(ROOT, 'tsconfig.json'), join(copy, 'tsconfig.json'));
      symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
      const tsc = () =>
        spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', join(copy, 'shared')], {
          encoding: 'utf8',
          timeout: 120_000,
        });
      // The tree as it is passes this check in npm test itself (scripts/test.sh): only the stray import is tried here.
      writeFileSync(join(copy, 'shared', 'stray.ts'), "import { readFileSync } from 'node:fs';\nexport const read = (path: string) => readFileSync(path);\n");
      const stray = tsc();
      expect(stray.status).not.toBe(0);
      expect(stray.stdout).toMatch(/shared\/stray\.ts.*Cannot find module 'node:fs'/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
