import { argmax } from './train-classifier.ts';

/** Confidence above which a sample counts as a recognisable digit. */
export const RECOGNISABLE_THRESHOLD = 0.9;

/** Share of rows (`classes` probabilities each) whose largest probability exceeds `threshold`. */
export function recognisableShare(probabilities: ArrayLike<number>, count: number, classes: number, threshold = RECOGNISABLE_THRESHOLD): number {
  let recognisable = 0;
  for (let n = 0; n < count; n++) if (probabilities[n * classes + argmax(probabilities, n * classes, classes)] > threshold) recognisable++;
  return recognisable / Math.max(1, count);
}

/**
 * Entropy of the histogram of predicted classes over log(classes): 1 when
 * every class is predicted equally often, 0 when one class takes all (mode
 * collapse shows here before it shows in a grid).
 */
export function coverageEntropy(probabilities: ArrayLike<number>, count: number, classes: number): number {
  if (classes < 2 || count === 0) return 0;
  const histogram = new Float64Array(classes);
  for (let n = 0; n < count; n++) histogram[argmax(probabilities, n * classes, classes)]++;
  let entropy = 0;
  for (const frequency of histogram) {
    if (frequency === 0) continue;
    const share = frequency / count;
    entropy -= share * Math.log(share);
  }
  return entropy / Math.log(classes);
}

/** Share of labelled rows (label >= 0) classified as their label; undefined when no row has a label. */
export function labelAgreement(probabilities: ArrayLike<number>, labels: ArrayLike<number>, count: number, classes: number): number | undefined {
  let labelled = 0;
  let agreeing = 0;
  for (let n = 0; n < count; n++) {
    if (labels[n] < 0) continue;
    labelled++;
    if (argmax(probabilities, n * classes, classes) === labels[n]) agreeing++;
  }
  return labelled === 0 ? undefined : agreeing / labelled;
}
