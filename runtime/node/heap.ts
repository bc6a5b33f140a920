import { setFlagsFromString } from 'node:v8';

/** The old generation may grow to this much over what survived the last full collection: V8's --heap-growing-percent. */
const SERVER_HEAP_GROWTH_PERCENT = 100;

/**
 * Sets V8's heap growth for the coordinator, a process that takes many large
 * messages over its sockets: the old generation may grow to twice what
 * survived a full collection before the next one starts. (An aggregator takes
 * the same kind of traffic; it was not measured, so it does not call this.)
 *
 * Why: V8 picks the growth from how fast the old generation grew, and a
 * coordinator's hardly grows (65 MB live at 512 workers; its churn is socket
 * buffers, outside the heap), so V8 chose a factor near its floor and set the
 * limit at 1.4-1.6x live. Incremental marking then started again as soon as a
 * full collection ended (`--trace-incremental-marking`: "Start (task)" with
 * 24-38 MB of the limit left): 2-3 mark-compacts a round at 512 workers, their
 * pauses and marking steps on the event loop during the round's bursts. With
 * this, one a round remains (started by the external memory of those socket
 * buffers), and the coordinator's CPU time per round fell by a quarter
 * (docs/performance.md). V8 reads the flag whenever it sets a new limit, so
 * setting it once the process runs takes effect at the next collection.
 */
export function setServerHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${SERVER_HEAP_GROWTH_PERCENT}`);
}
