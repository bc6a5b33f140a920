/**
 * A worker's trust score: pure bookkeeping, no I/O. Evidence moves the score
 * (verification mismatches, repeated outlier flags from the robust rule,
 * refused updates) and clean rounds bring it back slowly; below a threshold
 * the worker is quarantined. coordinator/verification.ts decides which
 * evidence a round produced and what quarantine means for the work.
 */

/** How far each kind of evidence moves the score, in [0, 1]. */
export interface TrustPolicy {
  /** A new worker's score. 1: an honest worker must never have to earn its way out of a probation first. */
  initial: number;
  /** Below this the worker is quarantined. */
  quarantineBelow: number;
  /** A quarantined worker whose score climbs back to this (through verified agreements only) is released. */
  releaseAbove: number;
  /** The referee recomputed the assignment and this worker's gradient is not it. */
  mismatch: number;
  /** A pair disagreed and no referee could say who was wrong: both pay a little. */
  softMismatch: number;
  /** An update refused for its content (non-finite, above the norm cap, wrong tensors, other weights). */
  refusal: number;
  /** An update the robust rule flagged, while the worker's recent outlier rate is above outlierRateLimit. */
  outlier: number;
  /** Share of recent rounds flagged above which flags cost trust: an honest worker is flagged now and then, a hostile one nearly always. */
  outlierRateLimit: number;
  /** Weight of the newest round in the outlier rate (an exponential average over ~1/outlierMemory rounds). */
  outlierMemory: number;
  /** A round whose aggregate took this worker's update unflagged. */
  clean: number;
  /** A duplicate of this worker's assignment agreed with it (or the referee did). */
  agreement: number;
}

/** The defaults, with reasons; quarantineBelow and releaseAbove come from training.verification. */
export const DEFAULT_TRUST_POLICY: TrustPolicy = {
  initial: 1,
  quarantineBelow: 0.3,
  releaseAbove: 0.6,
  // Honest workers agree within the tolerance on every backend measured, so a confirmed mismatch is strong evidence: two quarantine.
  mismatch: 0.4,
  // Without a referee the honest side of a pair pays too: small enough that one stray dispute never quarantines anyone.
  softMismatch: 0.15,
  // An honest worker is refused rarely (a NaN once a model diverged); eight refusals in a row quarantine.
  refusal: 0.1,
  // Flagged every round, a worker crosses the rate limit after 16 rounds and is quarantined 15 rounds later, at round 30.
  outlier: 0.05,
  // Honest workers are flagged too, in bursts: centered-clip flagged the smallest batch of a clean 4-worker DCGAN run in 19% of
  // its rounds, up to 5 in a row (a limit of 0.5 quarantined two honest workers of such a run). Above 0.8 takes ~16 in a row.
  outlierRateLimit: 0.8,
  outlierMemory: 0.1,
  // 50 clean rounds undo one soft mismatch and a half: slow, so alternating attack and good behaviour loses ground.
  clean: 0.01,
  agreement: 0.05,
};

/** Evidence about one worker. */
export type TrustEvent =
  | { kind: 'mismatch' }
  | { kind: 'soft-mismatch' }
  | { kind: 'agreement' }
  | { kind: 'refusal' }
  /** Its update went into a round's aggregate, flagged as an outlier or not. */
  | { kind: 'round'; outlier: boolean };

export interface TrustState {
  score: number;
  quarantined: boolean;
  /** Banned by an admin: quarantined for good, refused at hello. */
  banned: boolean;
  /** Exponential average of the outlier flags of its aggregated rounds. */
  outlierRate: number;
  /** Times it was quarantined: each halves what an agreement gives back while quarantined. */
  quarantines: number;
  counts: { mismatches: number; softMismatches: number; agreements: number; refusals: number; outliers: number; cleanRounds: number };
}

/** A new worker's trust. */
export function initialTrust(policy: TrustPolicy = DEFAULT_TRUST_POLICY): TrustState {
  return {
    score: policy.initial,
    quarantined: false,
    banned: false,
    outlierRate: 0,
    quarantines: 0,
    counts: { mismatches: 0, softMismatches: 0, agreements: 0, refusals: 0, outliers: 0, cleanRounds: 0 },
  };
}

const clamp = (value: number) => Math.min(1, Math.max(0, value));

/** The trust after one piece of evidence (a new object; the old one is left as it was). */
export function applyTrust(state: TrustState, event: TrustEvent, policy: TrustPolicy = DEFAULT_TRUST_POLICY): TrustState {
  const counts = { ...state.counts };
  let { score, outlierRate } = state;
  switch (event.kind) {
    case 'mismatch':
      counts.mismatches += 1;
      score -= policy.mismatch;
      break;
    case 'soft-mismatch':
      counts.softMismatches += 1;
      score -= policy.softMismatch;
      break;
    case 'refusal':
      counts.refusals += 1;
      score -= policy.refusal;
      break;
    case 'agreement':
      counts.agreements += 1;
      // A repeat offender climbs back ever more slowly: from 0.2, 8 agreements after a first quarantine; steps half as large after a second.
      score += state.quarantined ? policy.agreement / 2 ** Math.max(0, state.quarantines - 1) : policy.agreement;
      break;
    case 'round':
      outlierRate += policy.outlierMemory * (Number(event.outlier) - outlierRate);
      if (event.outlier) {
        counts.outliers += 1;
        if (outlierRate > policy.outlierRateLimit) score -= policy.outlier;
      } else {
        counts.cleanRounds += 1;
        score += policy.clean;
      }
      break;
  }
  return settle({ ...state, score: clamp(score), outlierRate, counts }, policy);
}

/** Scores are sums of steps like 0.05: compared with this slack, 14 steps of 0.05 from 1 land on 0.3, not just below it. */
const SLACK = 1e-9;

/** Quarantines below the threshold; releases (never a banned worker) once back above the release level. */
function settle(state: TrustState, policy: TrustPolicy): TrustState {
  if (!state.quarantined && state.score < policy.quarantineBelow - SLACK) return { ...state, quarantined: true, quarantines: state.quarantines + 1 };
  if (state.quarantined && !state.banned && state.score >= policy.releaseAbove - SLACK) return { ...state, quarantined: false, outlierRate: 0 };
  return state;
}

/** An admin's release: back to a new worker's score, unbanned; the counts and the number of quarantines stay as history. */
export function releaseTrust(state: TrustState, policy: TrustPolicy = DEFAULT_TRUST_POLICY): TrustState {
  return { ...state, score: policy.initial, quarantined: false, banned: false, outlierRate: 0 };
}

/** An admin's ban: quarantined for good, score 0. */
export function banTrust(state: TrustState): TrustState {
  return { ...state, score: 0, quarantined: true, banned: true, quarantines: state.quarantined ? state.quarantines : state.quarantines + 1 };
}

/** True when nothing has happened to the worker's trust yet (its record can be forgotten when it leaves). */
export function untouched(state: TrustState, policy: TrustPolicy = DEFAULT_TRUST_POLICY): boolean {
  return state.score === policy.initial && !state.quarantined && !state.banned && state.quarantines === 0 && state.outlierRate === 0;
}
