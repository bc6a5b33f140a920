/** One reading of the coordinator's /metrics. */
export interface MetricsSample {
  /** Since the sampler was made. */
  atMs: number;
  label?: string;
  rssBytes: number;
  heapUsedBytes: number;
  activeWorkers: number;
}

/** Sums the values of every series of `name` in Prometheus text (labels ignored); NaN when absent. */
export function metricValue(text: string, name: string): number {
  let sum = NaN;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    sum = Number.isNaN(sum) ? value : sum + value;
  }
  return sum;
}

/** Reads the coordinator's memory from /metrics (process_resident_memory_bytes, nodejs_heap_size_used_bytes) every period. */
export class CoordinatorSampler {
  readonly samples: MetricsSample[] = [];
  private readonly createdAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly periodMs: number,
  ) {}

  get latest(): MetricsSample | undefined {
    return this.samples.at(-1);
  }

  async sample(label?: string): Promise<void> {
    const response = await fetch(this.url);
    if (!response.ok) throw new Error(`GET ${this.url}: ${response.status}`);
    const text = await response.text();
    const rssBytes = metricValue(text, 'process_resident_memory_bytes');
    if (Number.isNaN(rssBytes)) throw new Error(`${this.url} has no process_resident_memory_bytes`);
    this.samples.push({
      atMs: performance.now() - this.createdAt,
      label,
      rssBytes,
      heapUsedBytes: metricValue(text, 'nodejs_heap_size_used_bytes'),
      activeWorkers: metricValue(text, 'tessera_active_workers'),
    });
  }

  start(): void {
    this.timer = setInterval(() => {
      // One scrape at a time: a slow coordinator must not pile them up.
      this.inFlight ??= this.sample()
        .catch(() => undefined)
        .finally(() => (this.inFlight = undefined));
    }, this.periodMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
