/** Sample quality of one set of generated images, scored against a dataset's held-out split. */
export interface QualityReport {
  /** e.g. 'mnist' */
  dataset: string;
  /** Generated samples scored. */
  count: number;
  /** Fréchet distance on the classifier's penultimate features, generated vs held-out. */
  frechet: number;
  /** The same distance for `count` real training-split digits vs held-out (the small-count bias). */
  frechetFloor: number;
  /** k-NN manifold precision (Kynkäänniemi et al. 2019), k = 3, in [0, 1]. */
  precision: number;
  /** k-NN manifold recall, in [0, 1]. */
  recall: number;
  /** Share of samples whose max class probability > 0.9. */
  recognisable: number;
  /** Entropy of the predicted-class histogram / log(classes), in [0, 1]. */
  coverageEntropy: number;
  /** Conditional models: share classified as the label asked for. */
  labelAgreement?: number;
  /** Conditional models, when asked: classification accuracy score on the held-out split. */
  cas?: number;
  /** Autoencoders: recognisable share of reconstructions of held-out digits. */
  reconstructionRecognisable?: number;
  /** Autoencoders: share of reconstructions classified as the original's label. */
  reconstructionAgreement?: number;
  /** Wall time the scoring took. */
  ms: number;
}
