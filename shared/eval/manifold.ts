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
export function manifoldPrecisionRecall(real: ArrayLike<number>, realCount: number, generated: ArrayLike<number>, generatedCount: number, dimension: number, k = 3): PrecisionRecall {
  if (realCount <= k || generatedCount <= k) throw new RangeError(`manifoldPrecisionRecall: k = ${k} needs more than ${k} vectors per set, got ${realCount} and ${generatedCount}`);
  const realRadii = kthNeighbourDistances(real, realCount, dimension, k);
  const generatedRadii = kthNeighbourDistances(generated, generatedCount, dimension, k);
  let precise = 0;
  const recalled = new Uint8Array(realCount);
  for (let g = 0; g < generatedCount; g++) {
    let inside = false;
    for (let r = 0; r < realCount; r++) {
      const distance = squaredDistance(generated, g, real, r, dimension);
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
  const distances = new Float64Array(count * count);
  for (let i = 0; i < count; i++) {
    for (let j = i + 1; j < count; j++) {
      const distance = squaredDistance(vectors, i, vectors, j, dimension);
      distances[i * count + j] = distance;
      distances[j * count + i] = distance;
    }
  }
  const radii = new Float64Array(count);
  const row = new Float64Array(count - 1);
  for (let i = 0; i < count; i++) {
    let m = 0;
    for (let j = 0; j < count; j++) if (j !== i) row[m++] = distances[i * count + j];
    row.sort();
    radii[i] = row[k - 1];
  }
  return radii;
}

function squaredDistance(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number, dimension: number): number {
  let sum = 0;
  const offsetA = i * dimension;
  const offsetB = j * dimension;
  for (let d = 0; d < dimension; d++) {
    const difference = a[offsetA + d] - b[offsetB + d];
    sum += difference * difference;
  }
  return sum;
}
