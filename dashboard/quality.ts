/**
 * The dashboard's sample-quality figures as pure functions over quality rows
 * (the round log's quality lines, shared/api/round-log.ts): the chart's
 * series and the sentence under it, tested without a browser.
 */
import type { QualityRow } from '../shared/api/round-log.ts';
import { formatCount, formatDuration } from './format.ts';

/** What the dashboard reads of a quality row. */
export type QualityFacts = Pick<
  QualityRow,
  | 'round'
  | 'version'
  | 'samplesSeen'
  | 'wallMs'
  | 'count'
  | 'frechet'
  | 'frechetFloor'
  | 'precision'
  | 'recall'
  | 'recognisable'
  | 'coverageEntropy'
  | 'labelAgreement'
  | 'cas'
  | 'reconstructionRecognisable'
  | 'ms'
>;

/** The chart's series: the distance, its floor, and the recognisable share. */
export function qualitySeriesOf(row: QualityFacts): Record<string, number> {
  return { frechet: row.frechet, frechetFloor: row.frechetFloor, recognisable: row.recognisable };
}

export const percent = (share: number) => `${(share * 100).toFixed(share >= 0.995 || share < 0.1 ? 1 : 0)}%`;

/** Minutes (or hours) of wall time, as a training run is talked about. */
export function formatWallTime(ms: number): string {
  const minutes = ms / 60_000;
  return minutes < 1 ? `${Math.round(ms / 1000)} s` : minutes < 120 ? `${minutes.toFixed(minutes < 10 ? 1 : 0)} min` : `${(minutes / 60).toFixed(1)} h`;
}

/** One line on the latest scoring: when, the headline figures, and what the model family adds. */
export function describeQuality(row: QualityFacts): string {
  const ratio = row.frechetFloor > 0 ? ` (${(row.frechet / row.frechetFloor).toFixed(1)}× the floor of ${row.frechetFloor.toFixed(1)})` : '';
  const parts = [
    `Fréchet ${row.frechet.toFixed(1)}${ratio}`,
    `recognisable ${percent(row.recognisable)}`,
    `precision ${row.precision.toFixed(2)}`,
    `recall ${row.recall.toFixed(2)}`,
    `class coverage ${row.coverageEntropy.toFixed(2)}`,
  ];
  if (row.labelAgreement !== undefined) parts.push(`label agreement ${percent(row.labelAgreement)}`);
  if (row.cas !== undefined) parts.push(`CAS ${percent(row.cas)}`);
  if (row.reconstructionRecognisable !== undefined) parts.push(`reconstructions recognisable ${percent(row.reconstructionRecognisable)}`);
  const when = `After round ${formatCount(row.round)} (${formatCount(row.samplesSeen)} samples seen, ${formatWallTime(row.wallMs)} in)`;
  return `${when}: ${parts.join(', ')}; ${formatCount(row.count)} samples scored in ${formatDuration(row.ms)}.`;
}
