/** One server-sent event, its data already JSON. */
export interface QueuedEvent {
  event: string;
  data: string;
}

/** Events whose newest copy makes the older ones worthless: a queued one is replaced, not added to. */
const LATEST_ONLY = new Set(['workers', 'keepalive']);

/**
 * The events waiting for one slow reader, bounded by count and by bytes (the
 * characters of their JSON). A push past either bound is refused: the caller
 * drops the reader instead of holding more for it. The first event is always
 * taken, however large, so a big snapshot still reaches a reader that reads.
 */
export class EventQueue {
  private readonly events: QueuedEvent[] = [];
  private queuedBytes = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  /** Queues an event; false, queuing nothing, when the reader is too far behind. */
  push(event: string, data: string): boolean {
    if (LATEST_ONLY.has(event)) {
      const index = this.events.findIndex((queued) => queued.event === event);
      if (index >= 0) this.queuedBytes -= this.events.splice(index, 1)[0].data.length;
    }
    if (this.events.length > 0 && (this.events.length >= this.maxEvents || this.queuedBytes + data.length > this.maxBytes)) return false;
    this.events.push({ event, data });
    this.queuedBytes += data.length;
    return true;
  }

  /** The oldest event, taken off the queue. */
  shift(): QueuedEvent | undefined {
    const next = this.events.shift();
    if (next) this.queuedBytes -= next.data.length;
    return next;
  }

  get length(): number {
    return this.events.length;
  }

  get bytes(): number {
    return this.queuedBytes;
  }
}
