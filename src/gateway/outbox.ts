/**
 * Batches messages to a worker-thread port: everything posted during one event-loop turn leaves as one
 * array in one postMessage (flushed from setImmediate, i.e. after the turn's socket reads), so under load the
 * receiving thread wakes once per batch, not once per packet.
 */
export class Outbox<T> {
  private queue: T[] = [];
  private scheduled = false;

  constructor(private readonly send: (batch: T[]) => void) {}

  push(m: T): void {
    this.queue.push(m);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Sends what is queued now (also called before a worker is terminated). */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.send(batch);
  };
}
