/** Mean and covariance of a set of feature vectors, in Float64. */
export interface GaussianStats {
  dimension: number;
  count: number;
  mean: Float64Array;
  /** Row-major dimension x dimension, normalised by count - 1 (as numpy.cov and the FID reference code). */
  covariance: Float64Array;
}

/** The mean and covariance of `count` row-major vectors of `dimension` values (the first `count` rows of `features`). */
export function gaussianStats(features: ArrayLike<number>, count: number, dimension: number): GaussianStats {
  if (features.length < count * dimension) throw new RangeError(`gaussianStats: ${features.length} values for ${count} vectors of ${dimension}`);
  if (count < 2) throw new RangeError(`gaussianStats: a covariance needs at least 2 vectors, got ${count}`);
  const mean = new Float64Array(dimension);
  for (let n = 0; n < count; n++) for (let i = 0; i < dimension; i++) mean[i] += features[n * dimension + i];
  for (let i = 0; i < dimension; i++) mean[i] /= count;
  const covariance = new Float64Array(dimension * dimension);
  const centered = new Float64Array(dimension);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < dimension; i++) centered[i] = features[n * dimension + i] - mean[i];
    for (let i = 0; i < dimension; i++) {
      const ci = centered[i];
      if (ci === 0) continue;
      for (let j = i; j < dimension; j++) covariance[i * dimension + j] += ci * centered[j];
    }
  }
  for (let i = 0; i < dimension; i++) {
    for (let j = i; j < dimension; j++) {
      const value = covariance[i * dimension + j] / (count - 1);
      covariance[i * dimension + j] = value;
      covariance[j * dimension + i] = value;
    }
  }
  return { dimension, count, mean, covariance };
}
