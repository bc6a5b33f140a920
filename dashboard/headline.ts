/**
 * The dashboard's headline figures as pure functions: what a person watching
 * a fleet wants first. No DOM here, so the numbers are tested without a browser.
 */
import type { RoundRow } from '../shared/api/round-log.ts';

/** The window the headline figures cover. */
export const HEADLINE_WINDOW_MS = 60_000;

/** What the headline reads of a closed round. */
export type RoundTiming = Pick<RoundRow, 'closedAt' | 'durationMs' | 'samples' | 'applied'>;

export interface RecentPace {
  /** Samples trained per second over the window: the rounds that applied, over the time they cover. */
  samplesPerSecond: number;
  roundsPerMinute: number;
  /** Rounds closed in the window. */
  rounds: number;
  /** The time the figures are over: the window, or less when the job has run for less. */
  spanMs: number;
}

/**
 * Throughput and round rate over the last `windowMs` before `now` (the
 * coordinator's clock). Rounds count when they closed in the window; the
 * span starts at the window's start, or at the start of the first of those
 * rounds when the job is younger than the window, so a job that started 20 s
 * ago is not shown at a third of its speed. A round that applied nothing
 * (every update refused) adds no samples but counts as a round.
 */
export function recentPace(rows: readonly RoundTiming[], now: number, windowMs = HEADLINE_WINDOW_MS): RecentPace {
  const windowStart = now - windowMs;
  const inWindow = rows.filter((row) => {
    const closed = Date.parse(row.closedAt);
    return closed > windowStart && closed <= now;
  });
  if (inWindow.length === 0) return { samplesPerSecond: 0, roundsPerMinute: 0, rounds: 0, spanMs: windowMs };
  const firstStart = Math.min(...inWindow.map((row) => Date.parse(row.closedAt) - row.durationMs));
  // An older round still running into the window means the job is older than the window: the whole window counts.
  const olderExists = rows.some((row) => Date.parse(row.closedAt) <= windowStart);
  const spanMs = olderExists ? windowMs : Math.min(windowMs, Math.max(1, now - firstStart));
  const samples = inWindow.reduce((sum, row) => sum + (row.applied ? row.samples : 0), 0);
  return { samplesPerSecond: (samples * 1000) / spanMs, roundsPerMinute: (inWindow.length * 60_000) / spanMs, rounds: inWindow.length, spanMs };
}

/** The workers fields the mix is built from. */
export interface WorkerFacts {
  kind: string;
  backend: string;
  connected: boolean;
}

export interface WorkerGroup {
  kind: string;
  /** Connected workers of this kind. */
  count: number;
  /** Backend → connected workers on it, most used first. */
  backends: { backend: string; count: number }[];
}

/** Connected workers grouped by kind, then by backend: the fleet at a glance. Most numerous first, ties by name. */
export function workerMix(workers: readonly WorkerFacts[]): WorkerGroup[] {
  const kinds = new Map<string, Map<string, number>>();
  for (const worker of workers) {
    if (!worker.connected) continue;
    const backends = kinds.get(worker.kind) ?? new Map<string, number>();
    backends.set(worker.backend, (backends.get(worker.backend) ?? 0) + 1);
    kinds.set(worker.kind, backends);
  }
  const byCount =
    <T extends { count: number }>(key: (item: T) => string) =>
    (a: T, b: T) =>
      b.count - a.count || key(a).localeCompare(key(b));
  return [...kinds]
    .map(([kind, backends]) => ({
      kind,
      count: [...backends.values()].reduce((sum, count) => sum + count, 0),
      backends: [...backends].map(([backend, count]) => ({ backend, count })).sort(byCount((item) => item.backend)),
    }))
    .sort(byCount((group) => group.kind));
}

/** `2 node (wasm 2), 1 browser (webgpu)`: the mix in one line. */
export function describeMix(groups: readonly WorkerGroup[]): string {
  if (groups.length === 0) return 'none connected';
  return groups
    .map(
      (group) =>
        `${group.count} ${group.kind} (${group.backends.map((entry) => (entry.count > 1 ? `${entry.backend} ${entry.count}` : entry.backend)).join(', ')})`,
    )
    .join(', ');
}

/**
 * The coordinator's clock as seen from this page: the smallest gap between
 * the page's clock and a live round's `closedAt` (the event left the
 * coordinator right after it closed, so the gap is skew plus delivery, and
 * the smallest is the closest to skew alone).
 */
export class ClockOffset {
  private offsetMs: number | undefined;

  /** Notes a round that has just closed, as the page received it at `pageNow`. */
  observe(closedAt: string, pageNow: number): void {
    const gap = pageNow - Date.parse(closedAt);
    if (Number.isFinite(gap)) this.offsetMs = this.offsetMs === undefined ? gap : Math.min(this.offsetMs, gap);
  }

  /** The coordinator's time now, from the page's. */
  coordinatorNow(pageNow: number): number {
    return pageNow - (this.offsetMs ?? 0);
  }
}
