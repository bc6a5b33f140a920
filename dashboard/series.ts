/**
 * The dashboard's chart data as pure functions over round rows: no DOM and no
 * uPlot here, so the numbers the charts show are tested without a browser.
 */
import type { RoundRow, RoundUpdateRow } from '../shared/api/round-log.ts';

/** Points kept per series: about one screen width of rounds, and cheap to redraw on every round. */
export const MAX_POINTS = 2000;

/** A column of values over rounds; null where the series has no value in that round (a worker absent). */
export type Column = (number | null)[];

/** What the charts' x axis counts: rounds, or wall-clock time (when each round closed). */
export type XAxis = 'round' | 'time';

/**
 * Named columns over a shared x (the round number, with the time each round
 * closed beside it), capped at `maxPoints`. A key first seen late gets nulls
 * for the rounds before it, so every column stays as long as x — the aligned
 * layout uPlot draws.
 */
export class RoundTable {
  readonly x: number[] = [];
  /** Seconds since the epoch at which each round closed (uPlot's time unit), aligned with x. */
  readonly times: number[] = [];
  private readonly columns = new Map<string, Column>();

  constructor(private readonly maxPoints = MAX_POINTS) {}

  /** The series keys, in the order they first appeared. */
  keys(): string[] {
    return [...this.columns.keys()];
  }

  /**
   * Adds one round's values and the time it closed (ms since the epoch);
   * returns the keys seen for the first time. Rounds at or before the last
   * one are ignored.
   */
  push(round: number, values: Record<string, number>, closedAtMs = Number.NaN): string[] {
    if (this.x.length > 0 && round <= this.x[this.x.length - 1]) return [];
    const added: string[] = [];
    for (const key of Object.keys(values)) {
      if (!this.columns.has(key)) {
        this.columns.set(key, new Array<number | null>(this.x.length).fill(null));
        added.push(key);
      }
    }
    this.x.push(round);
    this.times.push(closedAtMs / 1000);
    for (const [key, column] of this.columns) column.push(Number.isFinite(values[key]) ? values[key] : null);
    const excess = this.x.length - this.maxPoints;
    if (excess > 0) {
      this.x.splice(0, excess);
      this.times.splice(0, excess);
      for (const column of this.columns.values()) column.splice(0, excess);
    }
    return added;
  }

  /** The aligned data for `keys` (in that order), x first: round numbers, or the times the rounds closed. */
  data(keys: readonly string[], axis: XAxis = 'round'): [number[], ...Column[]] {
    return [axis === 'round' ? this.x : this.times, ...keys.map((key) => this.columns.get(key) ?? new Array<number | null>(this.x.length).fill(null))];
  }

  clear(): void {
    this.x.length = 0;
    this.times.length = 0;
    this.columns.clear();
  }
}

/** What the charts read of a closed round. */
export interface RoundFacts extends Pick<RoundRow, 'durationMs' | 'samplesPerSecond' | 'losses'> {
  updates: readonly Pick<RoundUpdateRow, 'workerId' | 'samples' | 'bytes'>[];
  failures: readonly unknown[];
}

/** Key prefix of a per-worker throughput series; the rest is the worker id. */
export const WORKER_KEY = 'worker:';
export const TOTAL_KEY = 'total';

/**
 * Samples per second in a round: the aggregate, and each worker's share —
 * its samples in the round over the round's duration, so the workers' values
 * add up to the aggregate
 * (up to the rounding of durationMs).
 */
export function throughputOf(row: RoundFacts): Record<string, number> {
  const values: Record<string, number> = { [TOTAL_KEY]: row.samplesPerSecond };
  const seconds = Math.max(1e-3, row.durationMs / 1000);
  for (const update of row.updates) {
    const key = WORKER_KEY + update.workerId;
    values[key] = (values[key] ?? 0) + update.samples / seconds;
  }
  return values;
}

/** The round's losses by network (`d`, `g` for a GAN; `mse` for diffusion), as the coordinator averaged them. */
export function lossesOf(row: RoundFacts): Record<string, number> {
  return { ...row.losses };
}

/** How long the round took, and how many workers answered or failed in it. */
export function participationOf(row: RoundFacts): Record<string, number> {
  return { durationMs: row.durationMs, updates: row.updates.length, failures: row.failures.length };
}

/** Bytes of all the round's updates as they arrived on the wire. */
export function trafficOf(row: RoundFacts): Record<string, number> {
  return { bytes: row.updates.reduce((sum, update) => sum + update.bytes, 0) };
}
