import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/protocol/errors.ts';
import { requireRealSecret, secretProblem } from './placeholder-secrets.ts';

const ROOT = new URL('../../', import.meta.url);

/** KEY=VALUE lines of an env file, comments and blanks left out. */
function envValues(path: string): [string, string][] {
  return readFileSync(new URL(path, ROOT), 'utf8')
    .split('\n')
    .filter((line) => /^[A-Z_]+=/.test(line))
    .map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]);
}

describe('placeholder secrets', () => {
  it('refuses every secret the example files ship', () => {
    const files = [
      'deploy/env.example',
      'k8s/base/secrets/admin.env',
      'k8s/base/secrets/worker.env',
      'k8s/base/secrets/nats.env',
      'k8s/base/secrets/nats-worker-seeds.env',
    ];
    const examples = files.flatMap(envValues).filter(([name]) => /TOKEN|PASS|KEY|SEEDS/.test(name));
    expect(examples.length).toBeGreaterThanOrEqual(7);
    for (const [name, value] of examples) expect(secretProblem(value), `${name}=${value}`).toBeDefined();
  });

  it('refuses empty, weak and short values, and says how to make a real one', () => {
    for (const value of ['', '   ', 'secret', 'Password', 'tessera-changeme', 'admin', 'short-1', '<your token>'])
      expect(secretProblem(value), value).toBeDefined();
    expect(() => requireRealSecret('TESSERA_ADMIN_TOKEN', 'REPLACE-ME-openssl-rand-hex-24')).toThrow(
      /TESSERA_ADMIN_TOKEN is a placeholder.*openssl rand -hex 32/,
    );
    let refusal: unknown;
    try {
      requireRealSecret('TESSERA_WORKER_TOKEN', '');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toMatchObject({ code: ErrorCode.InvalidConfig, field: 'TESSERA_WORKER_TOKEN' });
  });

  it('lets real secrets through, and an unset one (the caller decides what unset means)', () => {
    for (const value of ['3f9a1c0b7d2e4f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e', 'tessera-3f9a1c0b7d2e4f6a', 'families-admin'])
      expect(secretProblem(value), value).toBeUndefined();
    expect(() => requireRealSecret('TESSERA_READ_TOKEN', undefined)).not.toThrow();
  });
});
