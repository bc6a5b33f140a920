import type * as tf from '@tensorflow/tfjs';
import type { Trainer } from '../models/types.ts';
import { labelAgreement, recognisableShare } from './class-scores.ts';
import { classify } from './classifier.ts';
import type { LabelledImages } from './train-classifier.ts';

/** Images an autoencoder reconstructs per call: bounds its memory. */
const CHUNK = 250;

/**
 * How well an autoencoder keeps a digit: its reconstructions of real
 * held-out digits, classified. A blurry reconstruction loses confidence
 * (recognisable share); one that turns a 4 into a 9 loses agreement.
 */
export async function reconstructionScores(
  classifier: tf.LayersModel,
  trainer: Trainer,
  originals: LabelledImages,
): Promise<{ reconstructionRecognisable: number; reconstructionAgreement: number }> {
  if (!trainer.reconstruct) throw new Error('reconstructionScores: the trainer has no reconstruct()');
  const imageSize = originals.images.length / Math.max(1, originals.count);
  const reconstructed = new Float32Array(originals.images.length);
  for (let start = 0; start < originals.count; start += CHUNK) {
    const end = Math.min(originals.count, start + CHUNK);
    reconstructed.set(await trainer.reconstruct(originals.images.subarray(start * imageSize, end * imageSize)), start * imageSize);
  }
  const { probabilities, classes } = await classify(classifier, reconstructed, originals.count);
  return {
    reconstructionRecognisable: recognisableShare(probabilities, originals.count, classes),
    reconstructionAgreement: labelAgreement(probabilities, originals.labels, originals.count, classes) ?? 0,
  };
}
