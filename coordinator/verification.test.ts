import { describe, expect, it } from 'vitest';
import { getCodec } from '../shared/codec/index.ts';
import { arraysToTensors } from '../shared/codec/named.ts';
import type { NamedArrays } from '../shared/codec/types.ts';
import { dcgan } from '../shared/models/gan/dcgan.ts';
import { ErrorCode } from '../shared/protocol/errors.ts';
import type { Update } from '../shared/protocol/messages.ts';
import { createUniform } from '../shared/training/random.ts';
import { ErrorFeedback } from '../shared/worker/error-feedback.ts';
import { parseJobConfig } from './config.ts';
import { Job } from './job/job.ts';
import type { RoundSummary } from './job/round.ts';
import { shapes, updateFor } from './test-fixtures.ts';
import { suspicionOf, Verifier, type Referee, type Ruling, type Verdict, type VerifierOptions } from './verification.ts';

const honest: NamedArrays = { g_w: new Float32Array([0.1, -0.1, 0.1, -0.1, 0.1, -0.1]), d_w: new Float32Array([0.2, 0.2, -0.2, -0.2]) };
const flipped: NamedArrays = { g_w: honest.g_w.map((v) => -v), d_w: honest.d_w.map((v) => -v) };
const encode = (grads: NamedArrays) => getCodec('f32').encode(arraysToTensors(grads, shapes)).slice();

/** A referee that answers with the honest gradient, and counts its calls. */
function fakeReferee(answer: NamedArrays = honest): Referee & { calls: number } {
  return {
    calls: 0,
    async recompute() {
      this.calls += 1;
      return structuredClone(answer);
    },
    dispose() {},
  };
}

function setup(options: VerifierOptions, training: Record<string, unknown> = {}) {
  const config = parseJobConfig({ id: 'unit', training: { batchSize: 4, ...training }, dataset: { shards: 4 } });
  const job = new Job(config, shapes, Job.initialState(dcgan, { g_w: new Float32Array(6), d_w: new Float32Array(4) }, 4), 100);
  const verifier = new Verifier(job, { random: createUniform(5), ...options });
  const verdicts: Verdict[] = [];
  const rulings: Ruling[] = [];
  verifier.on('verdict', (verdict) => verdicts.push(verdict));
  verifier.on('ruling', (ruling) => rulings.push(ruling));
  /** One round with these copies, each worker sending the given gradient (the robust rule flagging `outliers`); returns what the aggregate left out. */
  const round = async (
    sent: Record<string, NamedArrays | Uint8Array>,
    copies: Map<string, string>,
    outliers: string[] = [],
  ): Promise<{ excluded: Map<string, string>; summary: RoundSummary }> => {
    const open = await job.openRound(
      Object.keys(sent).map((id) => ({ id, batchSize: 4 })),
      0,
      1000,
      copies,
    );
    for (const [id, grads] of Object.entries(sent))
      job.acceptUpdate(
        id,
        updateFor(open.assignments.get(id)!.message, {
          tensors: grads instanceof Uint8Array ? grads : encode(grads),
          codec: open.assignments.get(id)!.message.codec,
        }) as Update,
        1,
      );
    const { excluded } = verifier.exclusions(open);
    const summary = job.closeRound(2, excluded);
    // As the robust rule would have flagged them.
    verifier.observe({ ...summary, outliers: outliers.map((workerId) => ({ workerId, round: summary.round, networks: ['generator'], deviation: 9 })) });
    return { excluded, summary };
  };
  return { job, verifier, verdicts, rulings, round };
}

describe('Verifier', () => {
  it('with int8 and error feedback, honest copies carrying their own residuals agree, and a flipped one is ruled against', async () => {
    // Values between the int8 steps (±0.1 everywhere would sit on them): what rounding takes is carried to the next update.
    const gradient: NamedArrays = { g_w: new Float32Array([0.1, -0.031, 0.067, -0.012, 0.052, -0.093]), d_w: new Float32Array([0.2, 0.047, -0.13, -0.021]) };
    const referee = fakeReferee(gradient);
    const { verifier, verdicts, rulings, round } = setup({ referee }, { codec: 'int8', errorFeedback: true });
    const uniform = createUniform(8);
    /** What a worker sends for `grads` after earlier rounds of its own, three times larger. */
    const sendAfterHistory = (grads: NamedArrays) => {
      const feedback = new ErrorFeedback();
      for (let earlier = 0; earlier < 3; earlier++) {
        const history = Object.fromEntries(
          Object.entries(shapes).map(([name, shape]) => [name, Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => 0.6 * (uniform() - 0.5))]),
        );
        feedback.encode(getCodec('int8'), history, shapes, earlier);
        feedback.accepted(earlier);
      }
      return feedback.encode(getCodec('int8'), grads, shapes, 3);
    };
    await round({ a: sendAfterHistory(gradient), b: sendAfterHistory(gradient), c: sendAfterHistory(gradient) }, new Map([['c', 'a']]));
    expect(verdicts[0]).toMatchObject({ original: 'a', copy: 'c', outcome: 'agree' });
    const flippedGradient = Object.fromEntries(Object.entries(gradient).map(([name, values]) => [name, values.map((v) => -v)]));
    await round({ a: sendAfterHistory(gradient), b: sendAfterHistory(gradient), c: sendAfterHistory(flippedGradient) }, new Map([['c', 'a']]));
    expect(verdicts[1]).toMatchObject({ outcome: 'disputed' });
    await verifier.settled();
    expect(referee.calls).toBe(1);
    // The referee's gradient is exact: the honest side carries the codec's error and its residual, within the widened slack.
    expect(rulings.map(({ workerId, agrees }) => [workerId, agrees])).toEqual([
      ['a', true],
      ['c', false],
    ]);
  });

  it('an agreeing pair counts once: the copy is left out, both gain an agreement', async () => {
    const { verifier, verdicts, round } = setup({ referee: fakeReferee() });
    const { excluded, summary } = await round({ a: honest, b: honest, c: honest }, new Map([['c', 'a']]));
    expect(excluded).toEqual(new Map([['c', 'duplicate']]));
    expect(summary.updates.map((update) => update.workerId)).toEqual(['a', 'b']);
    expect(verdicts).toEqual([{ round: 0, original: 'a', copy: 'c', outcome: 'agree', distance: 0, tensor: '' }]);
    expect(verifier.trustOf('c').counts.agreements).toBe(1);
  });

  it('a disagreeing pair counts neither; the referee recomputes off the round and the one it disagrees with gets a mismatch', async () => {
    const referee = fakeReferee();
    const { verifier, verdicts, rulings, round } = setup({ referee });
    const { excluded, summary } = await round({ a: flipped, b: honest, c: honest }, new Map([['c', 'a']]));
    expect(excluded).toEqual(
      new Map([
        ['a', 'disputed'],
        ['c', 'disputed'],
      ]),
    );
    expect(summary.updates.map((update) => update.workerId)).toEqual(['b']);
    expect(verdicts[0]).toMatchObject({ outcome: 'disputed', distance: 2 });
    // Nothing judged yet: the round closed without waiting for the referee.
    expect(verifier.trustOf('a').counts.mismatches).toBe(0);
    await verifier.settled();
    expect(referee.calls).toBe(1);
    expect(rulings.map(({ workerId, agrees }) => [workerId, agrees])).toEqual([
      ['a', false],
      ['c', true],
    ]);
    expect(verifier.trustOf('a').score).toBeCloseTo(0.6);
    expect(verifier.trustOf('c').counts.agreements).toBe(1);
  });

  it('with no referee, both sides of a dispute get a soft mismatch', async () => {
    const { verifier, verdicts, round } = setup({ referee: null });
    await round({ a: flipped, b: honest }, new Map([['b', 'a']]));
    expect(verdicts[0].outcome).toBe('unresolved');
    for (const id of ['a', 'b']) expect(verifier.trustOf(id).counts.softMismatches).toBe(1);
  });

  it('quarantines a worker the referee keeps disagreeing with; then it only gets copies, never counts, and cannot veto the original', async () => {
    const { verifier, round } = setup({ referee: fakeReferee() });
    for (let i = 0; i < 2; i++) {
      await round({ a: flipped, b: honest }, new Map([['b', 'a']]));
      await verifier.settled();
    }
    expect(verifier.trustOf('a')).toMatchObject({ quarantined: true });
    expect(verifier.trustOf('b').quarantined).toBe(false);
    // From now on it copies b's work or rests; b works its own assignment.
    for (let i = 0; i < 20; i++) {
      const plan = verifier.plan(['a', 'b']);
      expect([...plan.copies, ...plan.resting.map((id) => [id, 'rests'])]).toEqual([['a', expect.stringMatching(/^(b|rests)$/)]]);
    }
    const { excluded, summary } = await round({ a: flipped, b: honest }, new Map([['a', 'b']]));
    expect(excluded).toEqual(new Map([['a', 'quarantined']]));
    expect(summary.updates.map((update) => update.workerId)).toEqual(['b']);
    expect(summary.excluded).toEqual([{ workerId: 'a', reason: 'quarantined' }]);
  });

  it('a quarantined worker agreeing on its copies is released after enough of them', async () => {
    const { verifier, round } = setup({ referee: fakeReferee() });
    for (let i = 0; i < 2; i++) {
      await round({ a: flipped, b: honest }, new Map([['b', 'a']]));
      await verifier.settled();
    }
    let probes = 0;
    while (verifier.trustOf('a').quarantined && probes < 20) {
      const { copies } = verifier.plan(['a', 'b']);
      if (!copies.has('a')) continue;
      await round({ a: honest, b: honest }, copies);
      probes += 1;
    }
    expect(probes).toBe(8);
  });

  it('a dispute with a quarantined worker and no referee marks only the quarantined side', async () => {
    const { verifier, round } = setup({ referee: null });
    verifier.ban('a');
    await round({ a: flipped, b: honest }, new Map([['a', 'b']]));
    expect(verifier.trustOf('a').counts.softMismatches).toBe(1);
    expect(verifier.trustOf('b').counts.softMismatches).toBe(0);
  });

  it("disputes past the referee's queue are unresolved, not queued without bound", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const referee: Referee = { recompute: async () => (await gate, structuredClone(honest)), dispose() {} };
    const { verifier, verdicts, round } = setup({ referee });
    for (let i = 0; i < 6; i++) await round({ a: flipped, b: honest }, new Map([['b', 'a']]));
    expect(verdicts.map((verdict) => verdict.outcome)).toEqual(['disputed', 'disputed', 'disputed', 'disputed', 'unresolved', 'unresolved']);
    release();
    await verifier.settled();
    expect(verifier.trustOf('a').counts.mismatches).toBe(4);
  });

  it('counts refusals that speak to honesty, not late or resent updates', () => {
    const { verifier } = setup({ referee: null });
    verifier.refused('a', ErrorCode.WrongRound);
    verifier.refused('a', ErrorCode.DuplicateUpdate);
    expect(verifier.trustOf('a').counts.refusals).toBe(0);
    verifier.refused('a', ErrorCode.NonFinite);
    verifier.refused('a', ErrorCode.StaleVersion);
    expect(verifier.trustOf('a').counts.refusals).toBe(2);
  });

  it('takes repeated outlier flags from the round summary', async () => {
    const { verifier, round } = setup({ referee: null });
    let rounds = 0;
    while (!verifier.trustOf('a').quarantined && rounds < 40) {
      await round({ a: honest, b: honest }, new Map(), ['a']);
      rounds += 1;
    }
    expect(rounds).toBe(30);
    expect(verifier.trustOf('b')).toMatchObject({ quarantined: false, score: 1 });
  });

  it('ban, release, and forgetting only records with nothing in them', () => {
    const { verifier } = setup({ referee: null });
    verifier.ban('a');
    expect(verifier.isBanned('a')).toBe(true);
    verifier.forget('a');
    expect(verifier.isBanned('a')).toBe(true);
    expect(verifier.release('a')).toMatchObject({ banned: false, quarantined: false, score: 1 });
    verifier.refused('b', ErrorCode.NonFinite);
    verifier.forget('b');
    expect(verifier.trustOf('b').counts.refusals).toBe(1);
  });

  it('keeps bans in the job state (so in checkpoints), and a new verifier over that state refuses the same ids', () => {
    const { job, verifier } = setup({ referee: null });
    verifier.ban('a');
    verifier.ban('b');
    verifier.release('b');
    expect(job.state.banned).toEqual(['a']);
    const restarted = new Verifier(job, { referee: null });
    expect(restarted.isBanned('a')).toBe(true);
    expect(restarted.trustOf('a')).toMatchObject({ quarantined: true, score: 0 });
    expect(restarted.isBanned('b')).toBe(false);
  });

  it('checks a worker more when it lost trust or the robust rule keeps flagging it', () => {
    const { verifier } = setup({ referee: null });
    expect(suspicionOf(verifier.trustOf('a'))).toBe(0);
    verifier.refused('a', ErrorCode.NonFinite);
    expect(suspicionOf(verifier.trustOf('a'))).toBeCloseTo(0.2);
    // An ordinary outlier rate raises nothing; one flagged every round for 8 rounds (rate 0.57) is checked 4 rounds in 10.
    expect(suspicionOf({ ...verifier.trustOf('b'), outlierRate: 0.2 })).toBe(0);
    expect(suspicionOf({ ...verifier.trustOf('b'), outlierRate: 1 - 0.9 ** 8 })).toBeCloseTo(0.43, 2);
  });

  it('copies nothing in local-update mode, where honest deltas of one assignment differ', () => {
    const { verifier } = setup({ referee: null }, { mode: 'local', verification: { duplicateShare: 1 } });
    expect(verifier.plan(['a', 'b', 'c', 'd']).copies.size).toBe(0);
    const sync = setup({ referee: null }, { verification: { duplicateShare: 1 } });
    expect(sync.verifier.plan(['a', 'b', 'c', 'd']).copies.size).toBe(2);
  });
});
