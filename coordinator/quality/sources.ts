import { readdir, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Evaluator, ScoreOptions } from '../../shared/eval/evaluator.ts';
import type { QualityReport } from '../../shared/eval/report.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';
import { CHECKPOINT_FILE } from '../checkpoint.ts';
import { openCheckpoint } from './source-checkpoint.ts';
import { openExportedModel } from './source-model.ts';
import { openPngs, type PngOptions } from './source-pngs.ts';

/** Something `npm run eval` can score: where its samples come from, and against which split. */
export interface SampleSource {
  /** One line for the report's header: what was read. */
  description: string;
  /** The dataset and split it was trained against, when the source says (a checkpoint does). */
  dataset?: string;
  heldOutFraction?: number;
  splitSeed?: number;
  /** Samples it holds (a PNG folder), or undefined when it can make any number (a model). */
  available?: number;
  score(evaluator: Evaluator, count: number, seed: number, options: ScoreOptions): Promise<QualityReport>;
  dispose(): void;
}

/**
 * Opens PATH as the first of: a checkpoint (checkpoint.msgpack, or a folder
 * holding one), an exported model (model.json, or a folder holding one), a
 * folder of PNGs, a grid PNG (with grid set). Anything else is refused,
 * naming what was looked for.
 */
export async function openSource(path: string, pngOptions: PngOptions = { size: 28 }): Promise<SampleSource> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new TesseraError(ErrorCode.InvalidConfig, `${path} does not exist`, { field: 'PATH' });
  if (info.isFile()) {
    if (basename(path) === CHECKPOINT_FILE) return openCheckpoint(dirname(path));
    if (basename(path) === 'model.json') return openExportedModel(dirname(path));
    if (pngOptions.grid && path.toLowerCase().endsWith('.png')) return (await openPngs({ file: path }, pngOptions))!;
    throw new TesseraError(ErrorCode.InvalidConfig, `${path} is neither ${CHECKPOINT_FILE} nor model.json (give a PNG folder, or one grid PNG with --grid)`, {
      field: 'PATH',
    });
  }
  const names = await readdir(path);
  if (names.includes(CHECKPOINT_FILE)) return openCheckpoint(path);
  if (names.includes('model.json')) return openExportedModel(path);
  const pngs = await openPngs({ dir: path }, pngOptions);
  if (pngs) return pngs;
  throw new TesseraError(ErrorCode.InvalidConfig, `${path} holds no ${CHECKPOINT_FILE}, no model.json and no PNG images`, { field: 'PATH' });
}
