import { MIN_SAMPLES, type HeldOutReference } from '../../shared/eval/evaluator.ts';
import type { QualityReport } from '../../shared/eval/report.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { getEvalDataset } from './datasets.ts';
import { loadEvaluator } from './load.ts';
import { formatReport } from './report-table.ts';
import { openSource } from './sources.ts';

export interface ScorePathOptions {
  count?: string;
  seed?: string;
  dataset?: string;
  cas?: boolean;
  json?: boolean;
  /** PNGs are sample grids (sampleGridPng's layout) to cut into digits. */
  grid?: boolean;
  /** Unlabelled PNGs were asked for the classes in turn. */
  cycleLabels?: boolean;
  /** Where the table or JSON goes (default stdout). */
  write?: (text: string) => void;
}

/** What `npm run eval -- PATH --json` prints. */
export interface PathScore {
  source: string;
  seed: number;
  report: QualityReport;
  /** Real training-split digits, as many as the samples, scored the same way. */
  realReference: QualityReport;
  heldOut: HeldOutReference;
}

/** Scores an exported model, a checkpoint or a PNG folder against its dataset's held-out split and prints the figures. */
export async function scorePath(path: string, options: ScorePathOptions): Promise<PathScore> {
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  const seed = parseInteger(options.seed ?? '1', '--seed', 0);
  const asked = options.count !== undefined ? parseInteger(options.count, '--count', MIN_SAMPLES) : undefined;
  // PNGs carry no dataset: they are cut to the size of the one asked for (mnist unless --dataset).
  const size = getEvalDataset(options.dataset ?? 'mnist', '--dataset').classifier.imageShape[0];
  const source = await openSource(path, { grid: options.grid, cycleLabels: options.cycleLabels, size });
  try {
    const evaluator = await loadEvaluator(options.dataset ?? source.dataset ?? 'mnist', { heldOutFraction: source.heldOutFraction, seed: source.splitSeed });
    try {
      const count = asked ?? source.available ?? evaluator.heldOutReference.count;
      const report = await source.score(evaluator, count, seed, { cas: options.cas });
      const realReference = await evaluator.scoreReal(report.count, { cas: options.cas && report.cas !== undefined });
      const result: PathScore = { source: source.description, seed, report, realReference, heldOut: evaluator.heldOutReference };
      write(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result));
      return result;
    } finally {
      evaluator.dispose();
    }
  } finally {
    source.dispose();
  }
}

function parseInteger(raw: string, field: string, min: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new TesseraError(ErrorCode.InvalidConfig, `${field} must be an integer >= ${min}, got ${JSON.stringify(raw)}`, { field });
  return value;
}
