import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errors, jwtVerify, SignJWT } from 'jose';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import { writeFileAtomic } from './outputs.ts';

/**
 * Join tokens: per-job links an admin hands out so that workers may join
 * without the shared worker token. Each is a JWT (HS256, signed with jose by
 * the coordinator's key) that names its job and expires; its id (jti) is kept
 * in the job's folder, where revoking marks it. A token is good only while
 * its signature, expiry and job hold and its id is on the job's list and not
 * revoked.
 */

/** The job's list of the tokens issued for it (never the tokens themselves). */
export const JOIN_TOKENS_FILE = 'join-tokens.json';
const ISSUER = 'tessera';
const AUDIENCE = 'tessera-worker';
/** At least a minute (a link must survive being pasted), at most 30 days (a link that never ends is a worker token). */
export const JOIN_TOKEN_TTL = { minSeconds: 60, maxSeconds: 30 * 24 * 3600 } as const;
/** Verified tokens remembered so a reconnecting worker is let in without waiting; more than any fleet holds. */
const VERIFIED_KEPT = 10_000;

/** One issued token as the job keeps it and the API lists it. */
export interface JoinTokenRecord {
  id: string;
  jobId: string;
  label: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

/** What a good join token lets in. */
export interface JoinGrant {
  jobId: string;
  tokenId: string;
  expiresAt: number;
}

const refused = (message: string) => new TesseraError(ErrorCode.Unauthorized, message, { field: 'token' });

/** SHA-256 of a token: the key it is remembered under (the token itself is not kept). */
function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** The records of one job, read from and written to its folder. */
class Ledger {
  constructor(
    private readonly path: string,
    readonly records: Map<string, JoinTokenRecord>,
  ) {}

  static async open(dir: string): Promise<Ledger> {
    const path = join(dir, JOIN_TOKENS_FILE);
    let records: JoinTokenRecord[] = [];
    try {
      records = (JSON.parse(await readFile(path, 'utf8')) as { tokens: JoinTokenRecord[] }).tokens;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return new Ledger(path, new Map(records.map((record) => [record.id, record])));
  }

  async save(): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify({ tokens: [...this.records.values()] }, null, 2)}\n`);
  }
}

export interface JoinTokensOptions {
  /** The signing key (at least 32 bytes); asked for once, when the first token is issued or checked. */
  key(): Promise<Uint8Array>;
  /** A job's output folder, where its list of tokens lives; undefined for a job the coordinator does not run. */
  dirOf(jobId: string): string | undefined;
}

/** Issues, checks and revokes join tokens for every job of a coordinator. */
export class JoinTokens {
  private keyBytes: Promise<Uint8Array> | undefined;
  private readonly ledgers = new Map<string, Promise<Ledger>>();
  /** The same ledgers once read, for the synchronous check. */
  private readonly loaded = new Map<string, Ledger>();
  /** Tokens whose signature has been checked, by fingerprint: a reconnect is let in synchronously. */
  private readonly verified = new Map<string, JoinGrant>();

  constructor(private readonly options: JoinTokensOptions) {}

  private key(): Promise<Uint8Array> {
    this.keyBytes ??= this.options.key().then((key) => {
      if (key.byteLength < 32)
        throw new TesseraError(ErrorCode.InvalidConfig, `the join-token key has ${key.byteLength} bytes; it needs at least 32`, { field: 'TESSERA_JOIN_KEY' });
      return key;
    });
    return this.keyBytes;
  }

  private ledger(jobId: string): Promise<Ledger> | undefined {
    const dir = this.options.dirOf(jobId);
    if (dir === undefined) return undefined;
    let ledger = this.ledgers.get(jobId);
    if (!ledger) {
      ledger = Ledger.open(dir);
      this.ledgers.set(jobId, ledger);
      ledger.then(
        (read) => this.loaded.set(jobId, read),
        // A failed read is not remembered: the next call tries again.
        () => this.ledgers.delete(jobId),
      );
    }
    return ledger;
  }

  private async ledgerOrFail(jobId: string): Promise<Ledger> {
    const ledger = this.ledger(jobId);
    if (!ledger) throw new TesseraError(ErrorCode.UnknownJob, `no job ${JSON.stringify(jobId)}`, { field: 'id' });
    return ledger;
  }

  /** Issues a token for a job: the token (shown once), and its record. */
  async issue(jobId: string, request: { ttlSeconds: number; label: string }, now = Date.now()): Promise<{ token: string; record: JoinTokenRecord }> {
    const ledger = await this.ledgerOrFail(jobId);
    const id = randomBytes(12).toString('base64url');
    const expiresAt = now + request.ttlSeconds * 1000;
    const token = await new SignJWT({ job: jobId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setJti(id)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .sign(await this.key());
    const record: JoinTokenRecord = {
      id,
      jobId,
      label: request.label,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(Math.floor(expiresAt / 1000) * 1000).toISOString(),
      revokedAt: null,
    };
    ledger.records.set(id, record);
    await ledger.save();
    return { token, record };
  }

  /** The job's tokens, newest first (never the tokens themselves). */
  async list(jobId: string): Promise<JoinTokenRecord[]> {
    const ledger = await this.ledgerOrFail(jobId);
    return [...ledger.records.values()].reverse();
  }

  /** Revokes a token: it lets no one in from now on. Undefined when the job has no token with that id. */
  async revoke(jobId: string, tokenId: string, now = Date.now()): Promise<JoinTokenRecord | undefined> {
    const ledger = await this.ledgerOrFail(jobId);
    const record = ledger.records.get(tokenId);
    if (!record) return undefined;
    if (record.revokedAt === null) {
      record.revokedAt = new Date(now).toISOString();
      await ledger.save();
    }
    for (const [key, grant] of this.verified) if (grant.tokenId === tokenId) this.verified.delete(key);
    return record;
  }

  /**
   * Checks a token already verified once, synchronously: the grant, a
   * refusal, or undefined when the token has not been seen (then `verify`).
   * Expiry and revocation are checked again every time.
   */
  check(token: string, jobId: string | undefined, now = Date.now()): JoinGrant | TesseraError | undefined {
    const key = fingerprint(token);
    const grant = this.verified.get(key);
    if (!grant) return undefined;
    if (now >= grant.expiresAt) {
      this.verified.delete(key);
      return refused('the join token has expired');
    }
    return this.admits(grant, jobId);
  }

  /** The checks that do not need the signature again: job, list, revocation. */
  private admits(grant: JoinGrant, jobId: string | undefined): JoinGrant | TesseraError {
    if (jobId !== undefined && jobId !== grant.jobId) return refused(`the join token is for job ${JSON.stringify(grant.jobId)}, not ${JSON.stringify(jobId)}`);
    // The ledger was read when the token was verified; a job the coordinator no longer runs lets no one in.
    const record = this.options.dirOf(grant.jobId) === undefined ? undefined : this.loaded.get(grant.jobId)?.records.get(grant.tokenId);
    if (!record) return refused('the join token is not one this job issued');
    if (record.revokedAt !== null) return refused('the join token was revoked');
    return grant;
  }

  /**
   * Verifies a token's signature, issuer, audience, expiry and job, then its
   * id on the job's list; remembers it for `check`. Resolves to the grant or a
   * refusal (never rejects for a bad token).
   */
  async verify(token: string, jobId: string | undefined, now = Date.now()): Promise<JoinGrant | TesseraError> {
    let claims: { job?: unknown; jti?: unknown; exp?: unknown };
    try {
      ({ payload: claims } = await jwtVerify(token, await this.key(), {
        algorithms: ['HS256'],
        issuer: ISSUER,
        audience: AUDIENCE,
        currentDate: new Date(now),
        requiredClaims: ['jti', 'exp', 'job'],
      }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) return refused('the join token has expired');
      if (error instanceof errors.JOSEError) return refused('not a valid worker token or join token');
      throw error;
    }
    if (typeof claims.job !== 'string' || typeof claims.jti !== 'string' || typeof claims.exp !== 'number')
      return refused('the join token lacks its job, id or expiry');
    const ledger = await this.ledger(claims.job)?.catch(() => undefined);
    if (!ledger) return refused(`the join token is for job ${JSON.stringify(claims.job)}, which this coordinator does not run`);
    const grant: JoinGrant = { jobId: claims.job, tokenId: claims.jti, expiresAt: claims.exp * 1000 };
    const verdict = this.admits(grant, jobId);
    if (verdict === grant) {
      if (this.verified.size >= VERIFIED_KEPT) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(fingerprint(token), grant);
    }
    return verdict;
  }
}
