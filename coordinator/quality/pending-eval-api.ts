// TEMPORARY: the evaluator's API as agreed in EVAL-API.md, until branch `eval` lands; removed at the merge.
import type { ModelSpec, Trainer } from '../../shared/models/types.ts';

export interface QualityReport {
  dataset: string;
  count: number;
  frechet: number;
  frechetFloor: number;
  precision: number;
  recall: number;
  recognisable: number;
  coverageEntropy: number;
  labelAgreement?: number;
  cas?: number;
  reconstructionRecognisable?: number;
  reconstructionAgreement?: number;
  ms: number;
}

export interface Evaluator {
  readonly dataset: string;
  scoreTrainer(trainer: Trainer, spec: ModelSpec<any>, count: number, seed: number, options?: { cas?: boolean }): Promise<QualityReport>;
  dispose(): void;
}

export async function loadEvaluator(_datasetId: string, _options?: { heldOutFraction?: number; seed?: number }): Promise<Evaluator> {
  throw new Error('the evaluator is not merged yet');
}
