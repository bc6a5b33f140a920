import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.ts';

/**
 * The layout's rules, checked on the import statements themselves: what the
 * folders promise (README's Layout table) is only true while nothing crosses them.
 */

function sources(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

/** Every module a file imports: relative ones resolved to repo paths, packages and node: modules as written. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)]
    .map((match) => match[1] ?? match[2])
    .map((spec) => (spec.startsWith('.') ? normalize(join(dirname(file), spec)) : spec));
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

  it('the import scan sees imports (it would catch a crossing)', () => {
    expect(importsOf('coordinator/job/open-job.ts')).toContain('runtime/node/datasets.ts');
    expect(importsOf('runtime/node/fashion-mnist.ts')).toContain('node:crypto');
  });
});

describe('the type check of shared/', () => {
  it('fails when a file under shared/ imports node:fs', async () => {
    const { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { spawnSync } = await import('node:child_process');
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
