/// <reference lib="dom" />
import { RoundChart } from './chart.ts';
import { formatCount } from './format.ts';
import { describeQuality, percent, qualitySeriesOf, type QualityFacts } from './quality.ts';
import type { XAxis } from './series.ts';

/** A quality row as the event stream sends it: the facts and when the weights scored were current. */
export type QualityEvent = QualityFacts & { closedAt: string };

const FRECHET_COLOR = '#9b51e0';
const RECOGNISABLE_COLOR = '#27ae60';

/**
 * The dashboard's sample-quality card: the Fréchet distance with its floor
 * and the recognisable share, against rounds or wall time like the other
 * charts, and a line on the latest scoring.
 */
export class QualityPanel {
  private readonly chart: RoundChart;
  private latest: QualityEvent | undefined;

  constructor(private readonly elements: { chart: HTMLElement; latest: HTMLElement; every: HTMLElement; samples: HTMLElement }) {
    this.chart = new RoundChart(elements.chart, {
      axes: [
        // Log: a distance that falls from hundreds towards a floor of tens shows the whole way, and the floor with it.
        { scale: 'distance', label: 'Fréchet distance (log)', log: true, format: (value) => String(Number(value.toPrecision(3))) },
        { scale: 'share', label: 'recognisable', format: percent, range: [0, 1] },
      ],
      style: (key) =>
        key === 'frechet'
          ? { label: 'Fréchet distance', stroke: FRECHET_COLOR, width: 2.5, scale: 'distance', value: (value) => value.toFixed(1) }
          : key === 'frechetFloor'
            ? { label: 'floor (real digits)', stroke: FRECHET_COLOR, dash: [5, 4], scale: 'distance', value: (value) => value.toFixed(1) }
            : { label: 'recognisable', stroke: RECOGNISABLE_COLOR, width: 2, scale: 'share', value: percent },
    });
  }

  /** Everything anew (a snapshot): the job's settings and its quality history. */
  reset(output: { evalEvery: number; evalSamples: number }, rows: readonly QualityEvent[]): void {
    this.chart.reset();
    this.latest = undefined;
    this.elements.every.textContent = output.evalEvery > 0 ? formatCount(output.evalEvery) : '–';
    this.elements.samples.textContent = formatCount(output.evalSamples);
    this.elements.latest.textContent =
      output.evalEvery > 0
        ? `No scoring yet: the first comes after ${formatCount(output.evalEvery)} training steps.`
        : 'Scoring is off for this job (output.evalEvery is 0).';
    for (const row of rows) this.add(row);
  }

  /** A scoring finished. */
  add(row: QualityEvent): void {
    this.chart.push(row.round, qualitySeriesOf(row), Date.parse(row.closedAt));
    this.latest = row;
    this.elements.latest.textContent = describeQuality(row);
  }

  setAxis(axis: XAxis): void {
    this.chart.setAxis(axis);
  }

  /** What the card shows, for tests. */
  state() {
    return {
      points: this.chart.points(),
      series: this.chart.seriesCount(),
      latestRound: this.latest?.round ?? null,
      frechet: this.latest?.frechet ?? null,
      text: this.elements.latest.textContent,
    };
  }
}
