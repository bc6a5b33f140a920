import type { RoundSummary } from './job/round.ts';
import type { QualityRow } from '../shared/api/round-log.ts';

/** One compact line per round: round, losses, who contributed at what speed, and the total. */
export function formatRound(summary: RoundSummary, nameOf: (workerId: string) => string, totalRounds: number): string {
  // The round is the number on the wire, from 0, as workers and error messages name it ("round 54 is not open").
  // Steps count applied rounds (the budget); the round number also counts rounds that applied nothing.
  const steps = summary.applied ? summary.version + 1 : summary.version;
  const round =
    totalRounds > 0
      ? `round ${summary.round}, step ${steps} of ${totalRounds}`
      : `round ${summary.round}${steps !== summary.round + 1 ? ` (step ${steps})` : ''}`;
  const losses = Object.entries(summary.losses)
    .map(([name, value]) => `${name.toUpperCase()} ${value.toFixed(3)}`)
    .join(' ');
  const speeds = summary.updates.map((update) => `${nameOf(update.workerId)} ${((update.samples / Math.max(update.computeMs, 1)) * 1000).toFixed(0)}/s`);
  const failed = summary.failures.length > 0 ? ` | ${summary.failures.length} missed (${summary.failures.map((failure) => failure.code).join(', ')})` : '';
  const applied = summary.applied ? '' : ' | no update: weights unchanged';
  const bar = totalRounds > 0 ? `${progressBar(steps / totalRounds)} ` : '';
  return `${bar}${round} | ${losses || 'no losses'} | ${summary.updates.length} updates, ${summary.samples} samples | ${speeds.join(', ')} | total ${summary.samplesPerSecond.toFixed(1)} samples/s in ${(summary.durationMs / 1000).toFixed(2)} s${failed}${applied}`;
}

/** A 20-cell bar and the percentage, for jobs with a known number of steps. */
export function progressBar(fraction: number, cells = 20): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  const filled = Math.round(clamped * cells);
  return `[${'#'.repeat(filled)}${'-'.repeat(cells - filled)}] ${(clamped * 100).toFixed(0).padStart(3)}%`;
}

/** One line per quality scoring, beside the round lines: the step scored and the headline figures. */
export function formatQuality(row: QualityRow): string {
  const extra = [
    row.labelAgreement === undefined ? '' : `, label agreement ${(row.labelAgreement * 100).toFixed(0)}%`,
    row.reconstructionRecognisable === undefined ? '' : `, reconstructions ${(row.reconstructionRecognisable * 100).toFixed(0)}% recognisable`,
  ].join('');
  return `quality at step ${row.version} (after round ${row.round}) | Fréchet ${row.frechet.toFixed(1)}, floor ${row.frechetFloor.toFixed(1)} | ${(row.recognisable * 100).toFixed(0)}% recognisable, precision ${row.precision.toFixed(2)}, recall ${row.recall.toFixed(2)}${extra} | ${row.count} samples in ${(row.ms / 1000).toFixed(1)} s`;
}
