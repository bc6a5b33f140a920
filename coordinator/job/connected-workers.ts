import { packOnce } from '../../shared/codec/packr.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import type { Ack, Update } from '../../shared/protocol/messages.ts';
import type { Verifier } from '../verification.ts';
import { lateMeasurement, recordSpeed, type WorkerSession } from '../workers.ts';
import type { Job } from './job.ts';
import type { PublishedWeights } from './published-weights.ts';
import type { AcceptedUpdate, Assignment, OpenRound } from './round.ts';

/** What answering an update needs of it. */
type Answering = Pick<Update, 'round' | 'timing'>;

/**
 * The workers connected to one job, as the job sees them: each session's
 * trust follows the verifier, a worker back mid-round gets its assignment
 * again, and every update is answered with ack or reject and counted in the
 * worker's session.
 */
export class ConnectedWorkers {
  private readonly sessions = new Map<string, WorkerSession>();
  /** The last round's ack, packed once for every worker it answers (a round's acks are the same bytes). */
  private ack: Ack | undefined;
  /**
   * The rounds of the updates the fold thread accepted, by worker, not
   * acknowledged yet: the round's close sends each worker's with its next
   * assignment (`acknowledges`), and flushAcks sends the others alone. At 512
   * workers an ack message each, read by every worker in the round's last
   * milliseconds, cost about a point of the round (docs/performance.md).
   */
  private readonly heldAcks = new Map<string, number>();

  constructor(
    private readonly job: Job,
    private readonly verifier: Verifier,
    private readonly clock: () => number,
    /** Told of each weights push (its tensor bytes and the transport), for the byte counters. */
    private readonly pushed: (bytes: number, transport: string) => void = () => undefined,
  ) {
    verifier.on('trust', (workerId, trust) => {
      const session = this.sessions.get(workerId);
      if (session) session.trust = trust;
    });
  }

  get list(): WorkerSession[] {
    return [...this.sessions.values()];
  }

  /** A worker is (again) connected. */
  add(session: WorkerSession): void {
    this.sessions.set(session.id, session);
    session.trust = this.verifier.trustOf(session.id);
    // A worker back mid-round finds its assignment again, if the round still waits for it.
    const round = this.job.current;
    const assignment = round?.assignments.get(session.id);
    if (assignment && !round!.updates.has(session.id) && !round!.failures.has(session.id) && !round!.pending?.has(session.id))
      this.send(session, assignment, this.job.weightsByHash(assignment.message.weightsHash));
  }

  /**
   * Sends each worker its assignment in the round just opened, `weights`
   * (the round's) first to those that lack them; the planned workers that
   * left while it opened are its failures.
   */
  assign(round: OpenRound, planned: readonly WorkerSession[], weights: PublishedWeights): void {
    for (const assignment of round.assignments.values()) {
      const session = this.sessions.get(assignment.workerId);
      if (session) this.send(session, assignment, weights);
    }
    for (const session of planned) if (!this.sessions.has(session.id)) this.job.markFailed(session.id, 'LEFT', 'left while the round opened');
  }

  /**
   * An assignment, preceded by its weights when this connection was not sent
   * them yet and its transport does not broadcast them: the worker computes
   * on arrival instead of asking (a round trip per worker and round, and the
   * coordinator reads no request). A worker still holding them ignores them.
   */
  private send(session: WorkerSession, assignment: Assignment, weights: PublishedWeights | undefined): void {
    const channel = session.channel;
    if (!channel) return;
    const held = this.heldAcks.get(session.id);
    this.heldAcks.delete(session.id);
    const send = () => {
      if (weights?.hash === assignment.message.weightsHash && !channel.broadcastsWeights && session.weightsSent !== weights.hash) {
        channel.send(weights.message);
        session.weightsSent = weights.hash;
        this.pushed(weights.bytes.byteLength, channel.transport);
      }
      channel.send(held === undefined ? assignment.message : { ...assignment.message, acknowledges: held });
    };
    if (channel.batch) channel.batch(send);
    else send();
  }

  /** Sends the acks held back that no assignment took along (the round closed, and the worker has no work in the next). */
  flushAcks(): void {
    for (const [workerId, round] of this.heldAcks) this.sessions.get(workerId)?.channel?.send(this.ackOf(round));
    this.heldAcks.clear();
  }

  private ackOf(round: number): Ack {
    return this.ack?.round === round ? this.ack : (this.ack = packOnce<Ack>({ type: 'ack', round }));
  }

  /** A worker left; false if it was not here. */
  remove(workerId: string): boolean {
    this.heldAcks.delete(workerId);
    if (!this.sessions.delete(workerId)) return false;
    this.verifier.forget(workerId);
    return true;
  }

  /**
   * Hands an update to the job and answers the worker; returns the refusal,
   * if it was refused (a promise of it when the job checks the update in its
   * fold thread: the worker is answered then).
   */
  answer(session: WorkerSession, update: Update): TesseraError | undefined | Promise<TesseraError | undefined> {
    let accepted: AcceptedUpdate | Promise<AcceptedUpdate>;
    try {
      accepted = this.job.acceptUpdate(session.id, update, this.clock());
    } catch (error) {
      return this.refuse(session, update, error);
    }
    if (accepted instanceof Promise) {
      // What the answer needs, not `update`, whose tensors (a view of the socket's buffer) the wait must not keep alive.
      const answering: Answering = { round: update.round, timing: update.timing };
      return accepted.then(
        (done) => this.acknowledge(session, answering, done, true),
        (error: unknown) => this.refuse(session, answering, error),
      );
    }
    return this.acknowledge(session, update, accepted);
  }

  /** `hold`: the ack waits for the round's close (heldAcks); else it goes now. */
  private acknowledge(session: WorkerSession, update: Answering, accepted: AcceptedUpdate, hold = false): undefined {
    session.updatesAccepted += 1;
    session.samplesContributed += accepted.samples;
    session.bytesReceived += accepted.bytes;
    recordSpeed(session, accepted.samples, accepted.finishMs, accepted);
    if (hold) this.heldAcks.set(session.id, update.round);
    else session.channel?.send(this.ackOf(update.round));
    return undefined;
  }

  private refuse(session: WorkerSession, update: Answering, error: unknown): TesseraError {
    const failure = error instanceof TesseraError ? error : new TesseraError(ErrorCode.Internal, String(error), { cause: error });
    session.updatesRejected += 1;
    this.verifier.refused(session.id, failure.code);
    // A late update still measured the worker's speed: without it a slow newcomer, cut off by a deadline learned
    // from faster workers, would get the same too-large batch every round and never contribute.
    const late = failure.code === ErrorCode.WrongRound ? lateMeasurement(session, update.round, this.clock()) : undefined;
    if (late) recordSpeed(session, late.samples, late.finishMs, update.timing);
    session.channel?.send({ type: 'reject', round: update.round, ...failure.toWire() });
    return failure;
  }
}
