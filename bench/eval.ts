/**
 * The evaluator's reference figures and its speed on the committed MNIST
 * classifier: what real digits score, the Fréchet floor by sample count, and
 * the time to score 1000 samples against the classifier's forward pass alone
 * (the baseline, measured in the same run). docs/quality.md quotes this table.
 *
 *   npx tsx bench/eval.ts [--quick] [--train]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getEvalDataset } from '../coordinator/quality/datasets.ts';
import { loadEvaluator, loadEvalSplit } from '../coordinator/quality/load.ts';
import { trainAndSave } from '../coordinator/quality/train.ts';
import { classifierHash } from '../coordinator/quality/weights.ts';
import { buildClassifier, classify } from '../shared/eval/classifier.ts';
import { drawRows, pickRows } from '../shared/eval/rows.ts';
import { selectNodeBackend } from '../runtime/node/backend.ts';
import { benchOptions } from './lib/options.ts';

const USAGE = `Usage: npx tsx bench/eval.ts [--quick] [--train]

The evaluator on the committed MNIST classifier (wasm, one core): real-data reference
figures, the Fréchet floor at 64, 256 and 1000 samples, and the time to score 1000
samples against the classifier's forward pass over them.

  --quick     counts 64 and 256 only
  --train     also time training the classifier from scratch (minutes), into a temporary folder
`;
const options = benchOptions(USAGE, { train: { type: 'boolean', default: false } });
const backend = await selectNodeBackend('wasm');
const counts = options.quick ? [64, 256] : [64, 256, 1000];

const evaluator = await loadEvaluator('mnist');
const split = loadEvalSplit('mnist');
const reference = evaluator.heldOutReference;
const rows: string[][] = [];
for (const count of counts) {
  const started = performance.now();
  const floor = await evaluator.frechetFloor(count);
  const floorMs = performance.now() - started;
  const real = await evaluator.scoreReal(count);
  rows.push([
    String(count),
    floor.toFixed(2),
    real.frechet.toFixed(2),
    real.precision.toFixed(3),
    real.recall.toFixed(3),
    `${(real.recognisable * 100).toFixed(1)}%`,
    floorMs.toFixed(0),
  ]);
}

// Speed: 1000 held-out digits as the samples, floor cached, against the classifier's forward pass alone.
const speedCount = Math.max(...counts);
const samples = pickRows(split.heldOut, drawRows(split.heldOut.count, speedCount, 9), 28 * 28);
const model = buildClassifier(getEvalDataset('mnist').classifier);
await classify(model, samples.images, speedCount);
let started = performance.now();
await classify(model, samples.images, speedCount);
const forwardMs = performance.now() - started;
model.dispose();
await evaluator.frechetFloor(speedCount);
started = performance.now();
const report = await evaluator.score(samples);
const scoreMs = performance.now() - started;

const table = (header: string[], body: string[][]) => {
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((row) => row[column].length)));
  return [header, widths.map((width) => '-'.repeat(width)), ...body]
    .map((row) => row.map((cell, column) => cell.padStart(widths[column])).join('  '))
    .join('\n');
};
process.stdout.write(`Evaluator on ${backend.device}
classifier: held-out accuracy ${(reference.accuracy * 100).toFixed(1)}%, held-out recognisable ${(reference.recognisable * 100).toFixed(1)}%, coverage entropy ${reference.coverageEntropy.toFixed(3)} (${reference.count} digits)

Real training-split digits against the held-out split:
${table(['count', 'FD floor', 'FD of one draw', 'precision', 'recall', 'recognisable', 'floor ms'], rows)}

Scoring ${speedCount} samples (floor cached): ${scoreMs.toFixed(0)} ms, ${(scoreMs / forwardMs).toFixed(1)}x the classifier's forward pass over them (${forwardMs.toFixed(0)} ms); report.ms ${report.ms.toFixed(0)}
`);

if (options.train) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-eval-bench-'));
  try {
    const { classifier: config } = getEvalDataset('mnist');
    const trainedAt = performance.now();
    const { model: trained, record } = await trainAndSave(split, config, classifierHash('mnist', config, split.train), dir);
    trained.dispose();
    process.stdout.write(
      `Training the classifier (${config.epochs} epochs over ${split.train.count} digits): ${((performance.now() - trainedAt) / 1000).toFixed(0)} s, held-out accuracy ${(record.heldOutAccuracy * 100).toFixed(2)}%\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
evaluator.dispose();
