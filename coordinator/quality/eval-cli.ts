#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { isTesseraError } from '../../shared/protocol/errors.ts';
import { selectNodeBackend } from '../../runtime/node/backend.ts';
import { getEvalDataset } from './datasets.ts';
import { DEFAULT_HELD_OUT_FRACTION, DEFAULT_SPLIT_SEED, loadEvalSplit } from './load.ts';
import { trainAndSave } from './train.ts';
import { cacheWeightsDir, classifierHash, COMMITTED_WEIGHTS_DIR } from './weights.ts';

const USAGE = `Usage: npm run eval -- PATH [options]
       npm run eval -- --train DATASET [--commit]

Scores generated images against the dataset's held-out split (Fréchet distance on
the evaluator classifier's features with its real-data floor, precision/recall,
recognisable share, class coverage; label agreement and CAS for conditional models).

PATH is one of:
  an exported model folder   model.json + weights.bin (a job's outputs/model): a generator or decoder
  a checkpoint               checkpoint.msgpack, or the job folder holding it (EMA weights when kept)
  a folder of PNGs           grey 28x28 digits; a name starting with a digit and a dash
                             (3-0012.png) or a K/ or class-K/ subfolder gives the label asked for
  a grid PNG (with --grid)   a job's sample grid (samples.png): cut into its cells

  --count N          samples to score (default 1000; a PNG folder: all its images)
  --seed S           sampling seed (default 1)
  --dataset ID       dataset to score against (default: the checkpoint's, else mnist)
  --grid             the PNGs are sample grids (1-pixel gutters, as jobs write them): score their cells
  --cycle-labels     unlabelled PNGs were asked for the classes in turn (a conditional job's grid)
  --cas              also train a classifier on the labelled samples (conditional models; minutes)
  --json             print the report as JSON instead of a table
  --train DATASET    (re)train the evaluator classifier of DATASET into the cache
                     ($TESSERA_CACHE/eval or ~/.cache/tessera/eval)
  --commit           with --train: write into coordinator/quality/weights/ instead, to commit
  --help             print this and exit
`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: 'string' },
    seed: { type: 'string', default: '1' },
    dataset: { type: 'string' },
    cas: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    grid: { type: 'boolean', default: false },
    'cycle-labels': { type: 'boolean', default: false },
    train: { type: 'string' },
    commit: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help || (!values.train && positionals.length !== 1)) {
  process.stdout.write(USAGE);
  process.exit(values.help ? 0 : 2);
}

try {
  await selectNodeBackend('wasm');
  if (values.train) await train(values.train, values.commit);
  else {
    const { scorePath } = await import('./score-path.ts');
    await scorePath(positionals[0], {
      count: values.count,
      seed: values.seed,
      dataset: values.dataset,
      cas: values.cas,
      json: values.json,
      grid: values.grid,
      cycleLabels: values['cycle-labels'],
    });
  }
} catch (error) {
  process.stderr.write(`eval: ${isTesseraError(error) ? `${error.code}: ` : ''}${(error as Error).message}\n`);
  process.exit(1);
}

async function train(datasetId: string, commit: boolean): Promise<void> {
  const { classifier: config } = getEvalDataset(datasetId, '--train');
  const split = loadEvalSplit(datasetId, DEFAULT_HELD_OUT_FRACTION, DEFAULT_SPLIT_SEED);
  const hash = classifierHash(datasetId, config, split.train);
  const dir = commit ? COMMITTED_WEIGHTS_DIR : cacheWeightsDir();
  const command = `npm run eval -- --train ${datasetId}${commit ? ' --commit' : ''}`;
  const { model } = await trainAndSave(split, config, hash, dir, { command, log: (line) => process.stderr.write(`${line}\n`) });
  model.dispose();
}
