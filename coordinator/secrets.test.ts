import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOrCreateSecret, sameToken } from './secrets.ts';

describe('loadOrCreateSecret', () => {
  it('writes a new secret readable by its owner only, and gives the same one back after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-secret-'));
    const path = join(dir, 'job', 'admin-token');
    const made = await loadOrCreateSecret(path);
    expect(made).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateSecret(path, () => 'another')).toBe(made);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('sameToken', () => {
  it('compares whole tokens, whatever their lengths', () => {
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abc', 'abd')).toBe(false);
    expect(sameToken('abc', 'abcd')).toBe(false);
    expect(sameToken('', 'abc')).toBe(false);
  });
});
