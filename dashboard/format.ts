/** How the dashboard writes numbers: the same rounding in the state panel, the table and the chart legends. */

/** Samples per second, to one decimal (what the state panel and tests compare). */
export function formatRate(samplesPerSecond: number): string {
  return samplesPerSecond.toFixed(1);
}

export function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

const BYTE_UNITS = ['B', 'kB', 'MB', 'GB'];

/** Decimal units, as network traffic is usually counted. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 || value >= 100 ? value.toFixed(0) : value.toFixed(value < 10 ? 2 : 1)} ${BYTE_UNITS[unit]}`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** "just now", "12 s ago", "3 min ago": how long since `iso`, seen from `now`. */
export function formatAge(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 2) return 'just now';
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}
