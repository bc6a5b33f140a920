/// <reference lib="dom" />
import uPlot from 'uplot';
import { RoundTable, type XAxis } from './series.ts';

/** How a series looks; asked for once, when its key first appears. */
export interface SeriesStyle {
  label: string;
  stroke: string;
  /** The y scale it is drawn on (a chart with two units has two). */
  scale?: string;
  width?: number;
  dash?: number[];
  stepped?: boolean;
  value?: (value: number) => string;
}

export interface RoundChartOptions {
  style(key: string, index: number): SeriesStyle;
  /** The y axes, left first; each names its scale and formats its ticks, and may fix its range (a share: 0 to 1) or be logarithmic. */
  axes: { scale: string; label: string; format?: (value: number) => string; range?: [number, number]; log?: boolean }[];
  height?: number;
}

const AXIS_STROKE = '#5b6575';
const AXIS_FONT = '12px system-ui, sans-serif';
const GRID_STROKE = 'rgba(29, 36, 48, 0.07)';

/**
 * One uPlot chart over rounds (or over wall time) whose series appear as
 * their keys do (a worker joins, a model reports a new loss). Pushes only
 * update the data; the draw happens once per animation frame, however many
 * rounds came in meanwhile.
 */
export class RoundChart {
  private readonly table = new RoundTable();
  private readonly keys: string[] = [];
  private readonly styles: SeriesStyle[] = [];
  /** Keys in the table that the plot has no series for yet. */
  private pending: string[] = [];
  private plot: uPlot;
  private axis: XAxis = 'round';
  private frame: number | undefined;

  constructor(
    private readonly host: HTMLElement,
    private readonly options: RoundChartOptions,
  ) {
    this.plot = this.build();
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(200, host.clientWidth), height: options.height ?? 220 })).observe(host);
  }

  /** A uPlot for the current x axis with the series known so far (uPlot cannot switch a scale to time in place). */
  private build(): uPlot {
    const { options, host } = this;
    const time = this.axis === 'time';
    const plot = new uPlot(
      {
        width: Math.max(200, host.clientWidth),
        height: options.height ?? 220,
        scales: { x: { time }, ...Object.fromEntries(options.axes.map((axis) => [axis.scale, scaleOf(axis)])) },
        series: [time ? { label: 'time' } : { label: 'round', value: (_u, value) => (value == null ? '–' : String(value)) }],
        axes: [
          { label: time ? 'time' : 'round', stroke: AXIS_STROKE, font: AXIS_FONT, grid: { stroke: GRID_STROKE }, ticks: { stroke: GRID_STROKE } },
          ...options.axes.map((axis, index) => ({
            scale: axis.scale,
            label: axis.label,
            side: index === 0 ? 3 : 1,
            stroke: AXIS_STROKE,
            font: AXIS_FONT,
            size: fitTickLabels,
            grid: { show: index === 0, stroke: GRID_STROKE },
            ticks: { stroke: GRID_STROKE },
            // A log axis with nothing to show yet gives null splits.
            values: axis.format ? (_u: uPlot, splits: (number | null)[]) => splits.map((value) => (value == null ? '' : axis.format!(value))) : undefined,
          })),
        ],
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
        hooks: { setCursor: [() => this.showLatestInLegend()] },
      },
      [[]],
      host,
    );
    for (const style of this.styles) plot.addSeries(seriesOf(style, options));
    return plot;
  }

  /** Draws against round numbers or against the time each round closed. */
  setAxis(axis: XAxis): void {
    if (axis === this.axis) return;
    this.axis = axis;
    this.plot.destroy();
    this.plot = this.build();
    this.draw();
  }

  /** Adds one round's values and when it closed (rounds already shown are ignored). */
  push(round: number, values: Record<string, number>, closedAtMs: number): void {
    this.pending.push(...this.table.push(round, values, closedAtMs));
    this.schedule();
  }

  /** Forgets every round and series (a reconnect sends the history again). */
  reset(): void {
    this.table.clear();
    this.keys.length = 0;
    this.styles.length = 0;
    this.pending = [];
    this.plot.batch(() => {
      while (this.plot.series.length > 1) this.plot.delSeries(this.plot.series.length - 1);
      this.plot.setData([[]]);
    });
  }

  /** Renames a series in the legend (a worker's name can arrive after its first round). */
  relabel(key: string, label: string): void {
    const index = this.keys.indexOf(key) + 1;
    if (index === 0 || this.plot.series[index].label === label) return;
    this.plot.series[index].label = label;
    this.styles[index - 1].label = label;
    const cell = this.plot.root.querySelectorAll('.u-legend .u-series')[index]?.querySelector('.u-label');
    if (cell) cell.textContent = label;
  }

  /** Rounds drawn now. */
  points(): number {
    return this.plot.data[0]?.length ?? 0;
  }

  /** Series drawn now (not counting x). */
  seriesCount(): number {
    return this.plot.series.length - 1;
  }

  private schedule(): void {
    this.frame ??= requestAnimationFrame(() => {
      this.frame = undefined;
      this.draw();
    });
  }

  private draw(): void {
    const added = this.pending;
    this.pending = [];
    this.plot.batch(() => {
      for (const key of added) {
        const style = this.options.style(key, this.keys.length);
        this.keys.push(key);
        this.styles.push(style);
        this.plot.addSeries(seriesOf(style, this.options));
      }
      // Copies: uPlot keeps the arrays it is given, and the table keeps changing until the next frame.
      this.plot.setData(this.table.data(this.keys, this.axis).map((column) => column.slice()) as uPlot.AlignedData);
    });
    this.showLatestInLegend();
  }

  /** Without a pointer over the chart, the legend shows the last round's values instead of dashes. */
  private showLatestInLegend(): void {
    const hovering = (this.plot.cursor.left ?? -1) >= 0;
    if (!hovering && this.points() > 0) this.plot.setLegend({ idx: this.points() - 1 });
  }
}

/** A y scale: fitted to the data, or a fixed range, on a linear or a log10 axis. */
function scaleOf(axis: RoundChartOptions['axes'][number]): uPlot.Scale {
  return { ...(axis.range ? { auto: false, range: axis.range } : { auto: true }), ...(axis.log ? { distr: 3, log: 10 } : {}) };
}

/** A uPlot series for a style. */
function seriesOf(style: SeriesStyle, options: RoundChartOptions): uPlot.Series {
  return {
    label: style.label,
    stroke: style.stroke,
    scale: style.scale ?? options.axes[0].scale,
    width: style.width ?? 1.5,
    dash: style.dash,
    spanGaps: false,
    points: { show: false },
    paths: style.stepped ? uPlot.paths.stepped!({ align: 1 }) : undefined,
    value: (_u, value) => (value == null ? '–' : style.value ? style.value(value) : value.toFixed(3)),
  };
}

/** A y axis as wide as its longest tick label, so labels like "150.0 kB" never run into the axis title. */
function fitTickLabels(plot: uPlot, values: string[] | null, axisIndex: number): number {
  const axis = plot.axes[axisIndex];
  const longest = (values ?? []).reduce((widest, value) => (value.length > widest.length ? value : widest), '');
  plot.ctx.font = AXIS_FONT;
  return Math.ceil((axis.ticks?.size ?? 10) + (axis.gap ?? 5) + plot.ctx.measureText(longest).width + 4);
}
