import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode, TesseraError } from '../shared/protocol/errors.ts';
import type { CoordinatorMessage } from '../shared/protocol/messages.ts';
import type { JoinTokens } from './join-tokens.ts';
import { sameToken } from './secrets.ts';
import type { WorkerSession } from './workers.ts';

/**
 * Who a worker is, for the hub's hello and the HTTP routes that serve a
 * worker: how it got in (the shared worker token, a join token, or an open
 * coordinator), and the secrets of its session. A worker id is public (the
 * job API and /metrics show it); only the secret that came with the welcome
 * lets a connection speak as that worker.
 */

/** Random bytes in a session's secret. */
const SECRET_BYTES = 32;
/** Domain separation: the HTTP credential is derived from the resume secret but cannot stand in for it. */
const DATA_TOKEN_CONTEXT = 'tessera/examples/v1';

/** How a hello got in. */
export type Admission = { via: 'open' } | { via: 'worker-token' } | { via: 'join-token'; jobId: string; tokenId: string };

/** The secrets a welcome carries: the worker keeps them, the coordinator only their digests. */
export interface SessionCredentials {
  resumeSecret: string;
  dataToken: string;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Whether `given` is the secret whose digest was kept: digests have one length, so the comparison is constant-time. */
function matches(given: string | undefined, kept: Buffer | undefined): boolean {
  return given !== undefined && kept !== undefined && timingSafeEqual(digest(given), kept);
}

/** The HTTP credential of a session: HMAC of a fixed context under the resume secret. */
function dataTokenOf(resumeSecret: string): string {
  return createHmac('sha256', resumeSecret).update(DATA_TOKEN_CONTEXT).digest('base64url');
}

/** Domain separation: the resume key is derived from the coordinator's key and signs nothing else. */
const RESUME_KEY_CONTEXT = 'tessera/resume/v1';

/**
 * Per-session secrets, kept as SHA-256 digests beside the session (a session
 * object forgotten takes them along). With the coordinator's key, a secret is
 * also signed for its job and worker id: 32 random bytes, a dot, and their
 * HMAC. A coordinator that restarted (or forgot the session) has no digest,
 * but can still tell a secret it issued for that id from a forged one, so the
 * worker keeps its id; nobody else can take it.
 */
export class SessionSecrets {
  private readonly kept = new WeakMap<WorkerSession, { resume: Buffer; data: Buffer }>();
  private readonly resumeKey: Buffer | undefined;

  constructor(coordinatorKey?: Uint8Array) {
    this.resumeKey = coordinatorKey ? createHmac('sha256', coordinatorKey).update(RESUME_KEY_CONTEXT).digest() : undefined;
  }

  private signature(jobId: string, workerId: string, nonce: string): string {
    return createHmac('sha256', this.resumeKey!).update(`${jobId}\n${workerId}\n${nonce}`).digest('base64url');
  }

  /** New secrets for a session (every welcome rotates them: one that leaked stops working at the next). */
  issue(session: WorkerSession): SessionCredentials {
    const nonce = randomBytes(SECRET_BYTES).toString('base64url');
    const resumeSecret = this.resumeKey ? `${nonce}.${this.signature(session.jobId, session.id, nonce)}` : nonce;
    const dataToken = dataTokenOf(resumeSecret);
    this.kept.set(session, { resume: digest(resumeSecret), data: digest(dataToken) });
    return { resumeSecret, dataToken };
  }

  /** True when `given` is a secret this coordinator's key signed for that worker id in that job (whatever sessions it remembers). */
  vouchesFor(jobId: string, workerId: string, given: string | undefined): boolean {
    if (!this.resumeKey || given === undefined) return false;
    const [nonce, signature, ...rest] = given.split('.');
    if (rest.length > 0 || !nonce || signature === undefined) return false;
    return sameToken(signature, this.signature(jobId, workerId, nonce));
  }

  /** True when `given` is the session's resume secret. */
  resumes(session: WorkerSession, given: string | undefined): boolean {
    return matches(given, this.kept.get(session)?.resume);
  }

  /** True when `given` is the session's data token. */
  authorisesData(session: WorkerSession, given: string | undefined): boolean {
    return matches(given, this.kept.get(session)?.data);
  }

  /** The session can no longer be resumed nor fetch data. */
  forget(session: WorkerSession): void {
    this.kept.delete(session);
  }
}

/** The hub's door policy and its sessions' secrets. */
export class WorkerIdentity {
  readonly secrets: SessionSecrets;
  readonly joinTokens: JoinTokens | undefined;
  /** The join token each session last got in with, so revoking it can disconnect them. */
  private readonly joinedWith = new WeakMap<WorkerSession, string>();

  /** `coordinatorKey` (the one join tokens are signed with) also signs resume secrets, so a worker keeps its id across a restart. */
  constructor(options: { joinTokens?: JoinTokens; coordinatorKey?: Uint8Array } = {}) {
    this.joinTokens = options.joinTokens;
    this.secrets = new SessionSecrets(options.coordinatorKey);
  }

  /**
   * Lets a hello in: the shared worker token (when the coordinator has one),
   * or a join token for the job. Without a worker token the coordinator is
   * open (local development) but a join token, when given, must still be
   * good. A join token seen for the first time is verified asynchronously:
   * the promise then resolves to the verdict.
   */
  admit(
    token: string | undefined,
    workerToken: string | undefined,
    jobId: string | undefined,
    now = Date.now(),
  ): Admission | TesseraError | Promise<Admission | TesseraError> {
    if (token === undefined) {
      return workerToken === undefined
        ? { via: 'open' }
        : new TesseraError(ErrorCode.Unauthorized, 'this coordinator needs a worker token or a join token', { field: 'token' });
    }
    if (workerToken !== undefined && sameToken(token, workerToken)) return { via: 'worker-token' };
    if (!this.joinTokens) return new TesseraError(ErrorCode.Unauthorized, 'wrong worker token', { field: 'token' });
    const known = this.joinTokens.check(token, jobId, now);
    if (known !== undefined) return admission(known);
    return this.joinTokens.verify(token, jobId, now).then(admission);
  }

  /** Remembers how a session got in (for revocation). */
  bind(session: WorkerSession, admitted: Admission): void {
    if (admitted.via === 'join-token') this.joinedWith.set(session, admitted.tokenId);
    else this.joinedWith.delete(session);
  }

  /** The id of the join token a session last got in with, if it did. */
  joinedWithToken(session: WorkerSession): string | undefined {
    return this.joinedWith.get(session);
  }

  /**
   * Ends the sessions that joined with a revoked token: each is told why and
   * its connection closed, and it can no longer be resumed. Returns how many
   * were connected.
   */
  disconnect(sessions: Iterable<WorkerSession>, tokenId: string): number {
    let connected = 0;
    for (const session of sessions) {
      if (this.joinedWith.get(session) !== tokenId) continue;
      this.secrets.forget(session);
      this.joinedWith.delete(session);
      const channel = session.channel;
      if (!channel) continue;
      connected += 1;
      const refusal: CoordinatorMessage = {
        type: 'error',
        ...new TesseraError(ErrorCode.Unauthorized, 'the join token this worker joined with was revoked', { field: 'token' }).toWire(),
      };
      channel.send(refusal);
      channel.close('join token revoked');
    }
    return connected;
  }
}

function admission(verdict: { jobId: string; tokenId: string } | TesseraError): Admission | TesseraError {
  return verdict instanceof TesseraError ? verdict : { via: 'join-token', jobId: verdict.jobId, tokenId: verdict.tokenId };
}

const identities = new WeakMap<object, WorkerIdentity>();

/**
 * The worker identity of a hub: the one the server attached, or a plain one
 * (no join tokens) made on first use, for hubs built alone in tests.
 */
export function identityOf(hub: object): WorkerIdentity {
  let identity = identities.get(hub);
  if (!identity) {
    identity = new WorkerIdentity();
    identities.set(hub, identity);
  }
  return identity;
}

/** Gives a hub its worker identity; once, before the hub or the routes use it. */
export function attachIdentity(hub: object, identity: WorkerIdentity): void {
  if (identities.has(hub)) throw new Error('this hub has a worker identity already');
  identities.set(hub, identity);
}
