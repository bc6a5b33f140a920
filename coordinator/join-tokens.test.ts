import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { JOIN_TOKENS_FILE, JoinTokens, type JoinGrant } from './join-tokens.ts';

const KEY = new TextEncoder().encode('k'.repeat(32));
const OTHER_KEY = new TextEncoder().encode('o'.repeat(32));
const NOW = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3600;

describe('JoinTokens', () => {
  let root: string;
  const dirOf = (jobId: string) => (['alpha', 'beta'].includes(jobId) ? join(root, jobId) : undefined);
  const tokens = (key = KEY) => new JoinTokens({ key: async () => key, dirOf });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tessera-join-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** The refusal's message, failing the test when the token was let in. */
  function refusal(verdict: JoinGrant | TesseraError | undefined): string {
    expect(verdict).toBeInstanceOf(TesseraError);
    expect((verdict as TesseraError).code).toBe(ErrorCode.Unauthorized);
    expect((verdict as TesseraError).field).toBe('token');
    return (verdict as TesseraError).message;
  }

  it('issues a token that lets a worker into its job until it expires, and keeps only its record', async () => {
    const joinTokens = tokens();
    const { token, record } = await joinTokens.issue('alpha', { ttlSeconds: HOUR, label: 'workshop' }, NOW);
    expect(record).toEqual({
      id: expect.any(String),
      jobId: 'alpha',
      label: 'workshop',
      createdAt: '2030-01-01T00:00:00.000Z',
      expiresAt: '2030-01-01T01:00:00.000Z',
      revokedAt: null,
    });
    expect(await joinTokens.verify(token, 'alpha', NOW + 1000)).toEqual({ jobId: 'alpha', tokenId: record.id, expiresAt: NOW + HOUR * 1000 });
    // A hello that names no job joins the token's.
    expect(await joinTokens.verify(token, undefined, NOW + 1000)).toMatchObject({ jobId: 'alpha' });
    // Once verified, the same token is checked without the signature, synchronously.
    expect(joinTokens.check(token, 'alpha', NOW + 2000)).toMatchObject({ tokenId: record.id });
    const saved = readFileSync(join(root, 'alpha', JOIN_TOKENS_FILE), 'utf8');
    expect(JSON.parse(saved).tokens).toEqual([record]);
    expect(saved).not.toContain(token.split('.')[2]);
  });

  it('refuses an expired token, first seen or already verified', async () => {
    const joinTokens = tokens();
    const { token } = await joinTokens.issue('alpha', { ttlSeconds: 60, label: '' }, NOW);
    expect(refusal(await tokens().verify(token, 'alpha', NOW + 61_000))).toMatch(/expired/);
    expect(await joinTokens.verify(token, 'alpha', NOW)).not.toBeInstanceOf(TesseraError);
    expect(refusal(joinTokens.check(token, 'alpha', NOW + 61_000))).toMatch(/expired/);
  });

  it('refuses a revoked token, also one verified before, and survives a restart with the revocation', async () => {
    const joinTokens = tokens();
    const { token, record } = await joinTokens.issue('alpha', { ttlSeconds: HOUR, label: '' }, NOW);
    const kept = await joinTokens.issue('alpha', { ttlSeconds: HOUR, label: 'kept' }, NOW);
    expect(await joinTokens.verify(token, 'alpha', NOW)).not.toBeInstanceOf(TesseraError);
    expect((await joinTokens.revoke('alpha', record.id, NOW + 5))?.revokedAt).toBe(new Date(NOW + 5).toISOString());
    expect(joinTokens.check(token, 'alpha', NOW + 10)).toBeUndefined();
    expect(refusal(await joinTokens.verify(token, 'alpha', NOW + 10))).toMatch(/revoked/);
    expect(await joinTokens.revoke('alpha', 'no-such-id')).toBeUndefined();
    // A restarted coordinator reads the job's list: the revoked token stays out, the other still works.
    const restarted = tokens();
    expect(refusal(await restarted.verify(token, 'alpha', NOW + 20))).toMatch(/revoked/);
    expect(await restarted.verify(kept.token, 'alpha', NOW + 20)).toMatchObject({ tokenId: kept.record.id });
    expect((await restarted.list('alpha')).map((entry) => entry.label)).toEqual(['kept', '']);
  });

  it('refuses a token for another job, or for a job this coordinator does not run', async () => {
    const joinTokens = tokens();
    const { token } = await joinTokens.issue('alpha', { ttlSeconds: HOUR, label: '' }, NOW);
    expect(refusal(await joinTokens.verify(token, 'beta', NOW))).toMatch(/for job "alpha", not "beta"/);
    expect(await joinTokens.verify(token, 'alpha', NOW)).not.toBeInstanceOf(TesseraError);
    expect(refusal(joinTokens.check(token, 'beta', NOW))).toMatch(/not "beta"/);
    await expect(joinTokens.issue('gamma', { ttlSeconds: HOUR, label: '' }, NOW)).rejects.toMatchObject({ code: ErrorCode.UnknownJob });
  });

  it('refuses a tampered token, one signed with another key, and one the job never issued', async () => {
    const joinTokens = tokens();
    const { token } = await joinTokens.issue('alpha', { ttlSeconds: HOUR, label: '' }, NOW);
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = (changes: Record<string, unknown>) =>
      `${header}.${Buffer.from(JSON.stringify({ ...claims, ...changes })).toString('base64url')}.${signature}`;
    expect(refusal(await joinTokens.verify(forged({ job: 'beta' }), undefined, NOW))).toMatch(/not a valid/);
    expect(refusal(await joinTokens.verify(forged({ exp: claims.exp + 10 * HOUR }), 'alpha', NOW))).toMatch(/not a valid/);
    const flipped = `${token.slice(0, -2)}${token.at(-2) === 'A' ? 'B' : 'A'}${token.at(-1)}`;
    expect(refusal(await joinTokens.verify(flipped, 'alpha', NOW))).toMatch(/not a valid/);
    // No algorithm switch: an unsigned token is refused whatever it claims.
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
    expect(refusal(await joinTokens.verify(unsigned, 'alpha', NOW))).toMatch(/not a valid/);
    for (const garbage of ['', 'abc', 'a.b.c', 'x'.repeat(4096)]) refusal(await joinTokens.verify(garbage, 'alpha', NOW));

    // The right key, a well-formed token, but an id the job never listed (its list was lost, or the key leaked).
    const stranger = await tokens(OTHER_KEY).issue('beta', { ttlSeconds: HOUR, label: '' }, NOW);
    expect(refusal(await tokens().verify(stranger.token, 'beta', NOW))).toMatch(/not a valid/);
    rmSync(join(root, 'alpha', JOIN_TOKENS_FILE));
    expect(refusal(await tokens().verify(token, 'alpha', NOW))).toMatch(/not one this job issued/);
  });

  it('refuses a signing key shorter than 32 bytes', async () => {
    await expect(tokens(new Uint8Array(16)).issue('alpha', { ttlSeconds: HOUR, label: '' }, NOW)).rejects.toMatchObject({ code: ErrorCode.InvalidConfig });
  });
});
