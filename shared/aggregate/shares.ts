/**
 * Each update's share of the round, its weight over the total, with no share
 * above the cap: what a capped update loses goes to the others in proportion
 * to their weights (water-filling), so the shares still sum to 1.
 *
 * With fewer than 3 updates the cap is lifted: two updates cannot outvote one
 * another, and capping would only flatten their sample counts and staleness
 * discounts. A cap the updates cannot all meet (n x maxShare < 1) becomes 1/n.
 */
export function cappedShares(weights: readonly number[], maxShare: number): Float64Array {
  const n = weights.length;
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const shares = Float64Array.from(weights, (weight) => weight / total);
  if (n < 3 || maxShare >= 1) return shares;
  const cap = Math.max(maxShare, 1 / n);
  const capped = new Uint8Array(n);
  // Each pass caps at least one more update, so at most n passes.
  for (let pass = 0; pass < n; pass++) {
    let fixedMass = 0;
    let freeWeight = 0;
    for (let k = 0; k < n; k++) {
      if (capped[k]) fixedMass += cap;
      else freeWeight += weights[k];
    }
    let changed = false;
    for (let k = 0; k < n; k++) {
      if (capped[k]) continue;
      const share = freeWeight > 0 ? ((1 - fixedMass) * weights[k]) / freeWeight : 0;
      if (share > cap) {
        capped[k] = 1;
        changed = true;
      }
      shares[k] = share;
    }
    if (!changed) break;
  }
  for (let k = 0; k < n; k++) if (capped[k]) shares[k] = cap;
  return shares;
}
