import type { NamedArrays } from '../codec/types.ts';
import { CLIP_MULTIPLE, deviationOf, noiseScale, radiiFromTau, weightedLowerMedian } from './clip.ts';
import { globalNorm } from './norms.ts';
import { cappedShares } from './shares.ts';
import { addScaled, dividedToFloat32 } from './weighted-mean.ts';

/**
 * What a StreamingMean has folded, in a form that adds up: the shares and the
 * float64 sums Σ share·scale·tensor, and each folded update's scaled norm and
 * share for the next round's τ. Aggregators send it (their partial of the
 * round); merging partials of disjoint sets of updates gives what one
 * StreamingMean folding all of them would hold, up to float64 rounding.
 */
export interface MeanState {
  share: number;
  sums: Record<string, Float64Array>;
  scaledNorms: number[];
  foldedShares: number[];
}

/** An update a StreamingMean with `hold` keeps whole until settle: its key, assigned share, norm and tensors. */
export interface HeldUpdate {
  key: string;
  share: number;
  norm: number;
  tensors: NamedArrays;
}

/**
 * The `mean` rule folded as updates arrive: memory O(parameters) however many
 * workers, and closing is one division. What `mean` needs from the whole
 * round is taken from what is known when the round opens:
 *
 * - the share cap against the *assigned* weights (water-filled over the
 *   assignments, as cappedShares does over the updates): at close the folded
 *   shares are renormalised over the updates that came, so an update carries
 *   at most maxShare x (assigned weight / arrived weight) of the round, which
 *   is maxShare when all arrive;
 * - the derived clip radius from *earlier* rounds: τ = CLIP_MULTIPLE x the
 *   lower weighted median of norm · sqrt(share) of the last round (see
 *   clipRadii), each update's radius τ / sqrt(its assigned share). With no
 *   τ yet (the first round) the caller buffers the round and uses `mean`.
 *   The bound stays: the lower median of the last round is an honest norm
 *   while attackers held less than half its weight.
 *
 * Outliers are the clipped updates; an update's deviation is its norm over
 * its radius (its distance to the result is not known once it is folded).
 *
 * With `hold` (the coordinator's own fold), an update beyond the last round's
 * radius is not clipped to it at once but held whole until the round closes
 * (`settle`), then clipped to the radius of its own round's τ, as the
 * buffered `mean` does: a round whose honest gradients all grew more than
 * CLIP_MULTIPLE times (a GAN's D suddenly winning) is not cut back to the
 * last round's size, and 1, 2 or 4 workers still train alike. Only the
 * updates beyond the radius are held: an honest round keeps O(parameters).
 * Aggregators clip at once (their partial carries sums, not updates).
 */
export class StreamingMean {
  private readonly sums: Record<string, Float64Array>;
  private readonly shares: Map<string, number>;
  private readonly radii: Map<string, number>;
  private arrivedShare = 0;
  private readonly assignedCount: number;
  /** norm · noiseScale(share) and share of each update folded, for the next round's τ. */
  private readonly scaledNorms: number[] = [];
  private readonly foldedShares: number[] = [];
  /** Updates beyond the last round's radius, kept whole until settle (with options.hold). */
  private held: HeldUpdate[] = [];
  private readonly hold: boolean;

  /**
   * `lengths`: each tensor's element count; `assigned`: each assignment's
   * weight by key (worker id); `tau` from nextTau of earlier rounds (ignored
   * when clipNorm > 0).
   */
  constructor(
    lengths: Readonly<Record<string, number>>,
    assigned: ReadonlyMap<string, number>,
    options: { maxShare: number; clipNorm: number; tau: number; hold?: boolean },
    /** Where the sums live: fresh arrays by default; the fold thread's are in its SimdArena (zeroed). */
    allocate: (length: number) => Float64Array = (length) => new Float64Array(length),
  ) {
    this.sums = Object.fromEntries(Object.entries(lengths).map(([name, length]) => [name, allocate(length)]));
    const keys = [...assigned.keys()];
    const shares = cappedShares(
      keys.map((key) => assigned.get(key)!),
      options.maxShare,
    );
    const radii = options.clipNorm > 0 ? keys.map(() => options.clipNorm) : radiiFromTau(options.tau, shares);
    this.assignedCount = keys.length;
    this.hold = (options.hold ?? false) && options.clipNorm === 0;
    this.shares = new Map(keys.map((key, k) => [key, shares[k]]));
    this.radii = new Map(keys.map((key, k) => [key, radii[k]]));
  }

  /**
   * Folds one assigned update in (a key at most once); says whether it was
   * clipped and its norm in radii, or that it is held (then settle says).
   * `norm` is the tensors' L2 norm when the caller has it already (the
   * coordinator's update checks compute it); it is computed otherwise.
   * `borrowed`: the caller reuses the tensors' memory after the call (the
   * fold thread decodes every update into one scratch set), so an update
   * held until settle is held as a copy.
   */
  add(key: string, tensors: NamedArrays, norm: number = globalNorm(tensors), borrowed = false): { clipped: boolean; deviation: number; held: boolean } {
    const share = this.shares.get(key);
    const radius = this.radii.get(key);
    if (share === undefined || radius === undefined) throw new Error(`streaming mean: ${key} has no assignment, or was folded already`);
    this.checkLengths(tensors, '');
    this.shares.delete(key);
    this.arrivedShare += share;
    if (norm > 0 && share > 0) {
      this.scaledNorms.push(norm * noiseScale(share, this.assignedCount));
      this.foldedShares.push(share);
    }
    if (this.hold && norm > radius) {
      const kept = borrowed ? Object.fromEntries(Object.entries(tensors).map(([name, array]) => [name, array.slice()])) : tensors;
      this.held.push({ key, share, norm, tensors: kept });
      return { clipped: false, deviation: deviationOf(norm, radius), held: true };
    }
    const scale = norm > radius ? radius / norm : 1;
    this.addToSums(tensors, share * scale);
    return { clipped: scale < 1, deviation: deviationOf(norm, radius), held: false };
  }

  private addToSums(tensors: NamedArrays, weight: number): void {
    if (weight === 0) return;
    for (const [name, sum] of Object.entries(this.sums)) addScaled(sum, tensors[name], weight);
  }

  /**
   * Folds the held updates, each clipped to its radius from this round's own
   * τ (over every update folded, as the buffered `mean` derives it), and says
   * for each whether it was clipped and its norm in those radii. Called by
   * result(); a second call has nothing left to settle.
   */
  settle(): { key: string; clipped: boolean; deviation: number }[] {
    if (this.held.length === 0) return [];
    const tau = this.nextTau();
    const settled = this.held.map(({ key, share, norm, tensors }) => {
      const radius = tau / noiseScale(share, this.assignedCount);
      const scale = norm > radius ? radius / norm : 1;
      this.addToSums(tensors, share * scale);
      return { key, clipped: scale < 1, deviation: deviationOf(norm, radius) };
    });
    this.held = [];
    return settled;
  }

  /** What was folded so far (views of the sums, not copies). */
  state(): MeanState {
    return { share: this.arrivedShare, sums: this.sums, scaledNorms: this.scaledNorms, foldedShares: this.foldedShares };
  }

  /**
   * Adds another StreamingMean's state, built on the same assignments and
   * options over updates folded neither here nor in another merged state.
   */
  merge(other: MeanState): void {
    this.checkLengths(other.sums, 'merged ');
    for (const [name, sum] of Object.entries(this.sums)) {
      const values = other.sums[name];
      for (let i = 0; i < sum.length; i++) sum[i] += values[i];
    }
    this.arrivedShare += other.share;
    this.scaledNorms.push(...other.scaledNorms);
    this.foldedShares.push(...other.foldedShares);
  }

  /**
   * Hands over the updates held so far (and holds them no more): with
   * state(), what another StreamingMean on the same assignments needs to
   * take this one's place (merge, then adoptHeld).
   */
  takeHeld(): HeldUpdate[] {
    const held = this.held;
    this.held = [];
    return held;
  }

  /** Holds updates another StreamingMean held, whose state() was merged here: settle clips and adds them. */
  adoptHeld(held: readonly HeldUpdate[]): void {
    for (const update of held) this.checkLengths(update.tensors, 'held ');
    this.held.push(...held);
  }

  /** Throws unless `tensors` holds every tensor of the sums at its length (`what` names them in the message). */
  private checkLengths(tensors: Readonly<Record<string, { length: number } | undefined>>, what: string): void {
    for (const [name, sum] of Object.entries(this.sums)) {
      if (tensors[name]?.length !== sum.length) throw new Error(`streaming mean: ${what}tensor ${name} missing or of another length`);
    }
  }

  /** Updates folded so far carry any weight. */
  get empty(): boolean {
    return this.arrivedShare === 0;
  }

  /** The mean of what arrived (held updates settled first), shares renormalised over it, rounded once to float32. */
  result(): NamedArrays {
    if (this.empty) throw new Error('streaming mean: no update with weight was folded');
    this.settle();
    return Object.fromEntries(Object.entries(this.sums).map(([name, sum]) => [name, dividedToFloat32(sum, this.arrivedShare)]));
  }

  /** τ for the next round from this one's norms (0 when none had length). */
  nextTau(): number {
    return this.scaledNorms.length === 0 ? 0 : CLIP_MULTIPLE * weightedLowerMedian(this.scaledNorms, this.foldedShares);
  }
}
