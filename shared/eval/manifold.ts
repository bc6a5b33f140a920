/** k-NN manifold precision and recall of generated against real feature vectors. */
export interface PrecisionRecall {
  /** Share of generated vectors inside the real manifold: how many samples look real. */
  precision: number;
  /** Share of real vectors inside the generated manifold: how much of the real variety is produced. */
  recall: number;
}

/**
 * Improved precision and recall (Kynkäänniemi et al. 2019): each set's
 * manifold is the union of balls around its vectors, each ball reaching the
 * vector's k-th nearest neighbour within its own set. Both sets should hold
 * the same number of vectors, or the larger one's balls shrink.
 */
export function manifoldPrecisionRecall(
  real: ArrayLike<number>,
  realCount: number,
  generated: ArrayLike<number>,
  generatedCount: number,
  dimension: number,
  k = 3,
): PrecisionRecall {
  if (realCount <= k || generatedCount <= k)
    throw new RangeError(`manifoldPrecisionRecall: k = ${k} needs more than ${k} vectors per set, got ${realCount} and ${generatedCount}`);
  const realVectors = Float64Array.from({ length: realCount * dimension }, (_, i) => real[i]);
  const generatedVectors = Float64Array.from({ length: generatedCount * dimension }, (_, i) => generated[i]);
  const realRadii = kthNeighbourDistances(realVectors, realCount, dimension, k);
  const generatedRadii = kthNeighbourDistances(generatedVectors, generatedCount, dimension, k);
  let precise = 0;
  const recalled = new Uint8Array(realCount);
  for (let g = 0; g < generatedCount; g++) {
    let inside = false;
    for (let r = 0; r < realCount; r++) {
      const distance = squaredDistance(generatedVectors, g * dimension, realVectors, r * dimension, dimension);
      if (distance <= realRadii[r]) inside = true;
      if (distance <= generatedRadii[g]) recalled[r] = 1;
    }
    if (inside) precise++;
  }
  let recall = 0;
  for (const flag of recalled) recall += flag;
  return { precision: precise / generatedCount, recall: recall / realCount };
}

/** Squared distance from each vector to its k-th nearest other vector in the same set. */
export function kthNeighbourDistances(vectors: ArrayLike<number>, count: number, dimension: number, k: number): Float64Array {
  const values = vectors instanceof Float64Array ? vectors : Float64Array.from({ length: count * dimension }, (_, i) => vectors[i]);
  // The k smallest distances seen so far for each vector, ascending: a row of k, kept by insertion.
  const nearest = new Float64Array(count * k).fill(Infinity);
  const keep = (i: number, distance: number) => {
    const row = i * k;
    if (distance >= nearest[row + k - 1]) return;
    let j = k - 1;
    while (j > 0 && nearest[row + j - 1] > distance) {
      nearest[row + j] = nearest[row + j - 1];
      j--;
    }
    nearest[row + j] = distance;
  };
  for (let i = 0; i < count; i++) {
    for (let j = i + 1; j < count; j++) {
      const distance = squaredDistance(values, i * dimension, values, j * dimension, dimension);
      keep(i, distance);
      keep(j, distance);
    }
  }
  return Float64Array.from({ length: count }, (_, i) => nearest[i * k + k - 1]);
}

function squaredDistance(a: Float64Array, offsetA: number, b: Float64Array, offsetB: number, dimension: number): number {
  let sum = 0;
  for (let d = 0; d < dimension; d++) {
    const difference = a[offsetA + d] - b[offsetB + d];
    sum += difference * difference;
  }
  return sum;
}
