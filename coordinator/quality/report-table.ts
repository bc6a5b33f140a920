import type { QualityReport } from '../../shared/eval/report.ts';
import type { PathScore } from './score-path.ts';

const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
const fixed = (digits: number) => (value: number) => value.toFixed(digits);

interface Row {
  figure: string;
  key: keyof QualityReport;
  format: (value: number) => string;
  /** The real-data value beside it, when it is not the real digits' own figure. */
  real?: (score: PathScore) => string;
  meaning: string;
}

const ROWS: Row[] = [
  {
    figure: 'Fréchet distance',
    key: 'frechet',
    format: fixed(2),
    real: (score) => `${fixed(2)(score.report.frechetFloor)} floor`,
    meaning: 'lower is better; the floor is real training digits vs held-out at this count',
  },
  { figure: 'precision (k=3)', key: 'precision', format: fixed(3), meaning: "share of samples inside the real digits' manifold" },
  { figure: 'recall (k=3)', key: 'recall', format: fixed(3), meaning: "share of real digits inside the samples' manifold" },
  // Confidence figures of real digits come from the held-out split: the classifier has seen the training digits and is surer of them.
  {
    figure: 'recognisable (p > 0.9)',
    key: 'recognisable',
    format: percent,
    real: (score) => percent(score.heldOut.recognisable),
    meaning: 'share the classifier is sure of',
  },
  { figure: 'coverage entropy', key: 'coverageEntropy', format: fixed(3), meaning: '1 = every class equally often, 0 = one class only' },
  {
    figure: 'label agreement',
    key: 'labelAgreement',
    format: percent,
    real: (score) => percent(score.heldOut.accuracy),
    meaning: 'conditional: share classified as the label asked for',
  },
  { figure: 'CAS', key: 'cas', format: percent, meaning: 'conditional: held-out accuracy of a classifier trained on the samples' },
  {
    figure: 'reconstructions recognisable',
    key: 'reconstructionRecognisable',
    format: percent,
    real: (score) => percent(score.heldOut.recognisable),
    meaning: "autoencoders: of held-out digits' reconstructions",
  },
  {
    figure: 'reconstructions agreeing',
    key: 'reconstructionAgreement',
    format: percent,
    real: (score) => percent(score.heldOut.accuracy),
    meaning: "autoencoders: classified as the original's label",
  },
];

/** The report as a table: each figure, the real digits' figure beside it, and what it means. */
export function formatReport(score: PathScore): string {
  const { report, realReference, heldOut } = score;
  const rows = ROWS.filter((row) => report[row.key] !== undefined).map((row) => {
    const realValue = realReference[row.key];
    const real = row.real ? row.real(score) : typeof realValue === 'number' ? row.format(realValue) : '-';
    return [row.figure, row.format(report[row.key] as number), real, row.meaning];
  });
  const header = ['figure', 'samples', 'real digits', 'meaning'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ');
  return [
    `${score.source}`,
    `${report.count} samples (seed ${score.seed}) against ${report.dataset}'s ${heldOut.count} held-out digits; scored in ${(report.ms / 1000).toFixed(1)} s`,
    '',
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    `real digits: the floor, precision, recall, coverage and CAS of ${realReference.count} real training-split digits scored the same way;`,
    `recognisable and label agreement (the classifier's accuracy) of the ${heldOut.count} held-out digits, which it never trained on.`,
    '',
  ].join('\n');
}
